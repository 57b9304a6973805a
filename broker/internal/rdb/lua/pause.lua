-- pause.lua: the session's own user pauses an active session: its seat is
-- freed if no other session holds it, and PPU billing stops. A desktop
-- client pauses with the fencing token of its grant; the user acting
-- through the REST API holds no lease and passes none.
-- Arguments: a1 session id, a2 user id, a3 the pauser's fencing token (""
-- when it holds none).
-- Reply: OK, the session itself; NOT_FOUND {} (unknown, or another user's);
-- STALE {} (a token that is not the session's current one); BAD_STATE
-- {session} when it is not active; USER_LIMIT {} when the user keeps
-- MAX_PAUSED paused sessions already.
OPS['pause'] = function(a1, a2, a3)
  local sid, uid, fence = a1, a2, a3

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  local s = sess(sid)
  if not s or s.user ~= uid then return ST_NOT_FOUND, {} end
  if fence ~= '' and s.fence ~= fence then return ST_STALE, {} end
  if LAGGING then overdue(s, now) end
  if s.state ~= 'active' then return ST_BAD_STATE, {session = s} end
  if paused_count(uid) >= MAX_PAUSED then return ST_USER_LIMIT, {} end
  settle(s, now)
  if s.state ~= 'active' then return ST_BAD_STATE, {session = s} end
  detach(s, now)
  upaused_add(uid, sid)
  s.state = 'paused'
  s.at = num_str(now)
  s.paused_at = s.at
  s.paused_until = num_str(now + dur('paused'))
  touch(s)
  emit_session(s)
  return ST_OK, s
end
