-- block.lua: block or unblock a user. Blocking ends all the user's sessions
-- the way End Selected Sessions does, with reason user_blocked; a blocked
-- user gets no seat.
-- Arguments: a1 user id, a2 "1" to block
-- or "0" to unblock, a3 who did it.
-- Reply: OK {user, ended = number of sessions given the notice or ended};
-- NOT_FOUND {}.
OPS['block'] = function(a1, a2, a3)
  local uid, block, by = a1, a2 == '1', a3

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  local old = user(uid)
  if not old then return ST_NOT_FOUND, {} end
  local u = {} -- a copy: user() may share its table with later calls
  for k, v in pairs(old) do u[k] = v end
  u.status = block and 'blocked' or 'active'
  local js = jencode(u)
  rcall('HSET', K_USERS, uid, js)
  MU[uid], MWROTE = js, true -- (lib.lua, MIRRORS)
  local n = 0
  if block then
    -- the user's own sessions, never the whole account's: its seats name
    -- its seat-holding sessions, its paused list the others (lib.lua,
    -- upaused). Both are read through this call's state, so sessions
    -- earlier operations of the batch opened or paused are among them.
    local list = own_sessions(uid)
    for sid in gmatch(upaused(uid), '[^ ]+') do
      local s = sess(sid)
      if s then list[#list + 1] = s end
    end
    for _, s in ipairs(list) do
      if s.state ~= 'ended' and s.state ~= 'terminating' then
        if LAGGING then overdue(s, now) end
        if s.state ~= 'ended' then
          terminate(s, 'user_blocked', by, now)
          n = n + 1
        end
      end
    end
  end
  emit({type = 'user', user = u})
  return ST_OK, {user = u, ended = n}
end
