-- open.lua: open a session for a user on a device, with a code (standby) or
-- without (active), taking a seat by the seat rules.
-- Arguments: a1 session id, a2 user id,
-- a3 device id, a4 device name, a5 code ("" for none).
-- Reply: OK, the session itself; USER_BLOCKED/USER_LIMIT/ACCOUNT_LIMIT/PPU_EXHAUSTED
-- {own = the user's seat-holding sessions}; NOT_FOUND {} for an unknown
-- account or user.
OPS['open'] = function(a1, a2, a3, a4, a5)
  local sid, uid, device, device_name, code = a1, a2, a3, a4, a5

  local now = start()
  if not now then return ST_NOT_FOUND, {what = 'account'} end
  local existing = sess(sid)
  if existing then
    -- a retried open: answer what the first one did
    if existing.user ~= uid then return ST_EXISTS, {} end
    if LAGGING then overdue(existing, now) end
    return ST_OK, existing
  end
  local u = user(uid)
  if not u then return ST_NOT_FOUND, {what = 'user'} end

  local at = NUMSTR[now] or num_str(now)
  -- state and kind (acquire sets it) in the constructor: with 9 fields it
  -- sizes the table for the 12-14 a session gets, with no rehash on the way
  local s = {id = sid, user = uid, user_name = u.name, device = device, device_name = device_name,
    created = at, at = at, state = code ~= '' and 'standby' or 'active', kind = 'prepaid'}
  if code ~= '' then
    s.code = code
    s.standby_until = num_str(now + dur('standby'))
  end
  local status = acquire(s, u, now)
  if status ~= ST_OK then
    -- nothing was written: acquire checks before it changes anything
    return status, {own = own_sessions(uid)}
  end
  s.fence = next_fence()
  if s.state == 'active' then activate(s, now) end
  S[sid] = s
  SDIRTY[sid] = true
  -- (emit_session, inline: a new table is in no event yet, unless its
  -- first minute took the last of the balance and the notice emitted it)
  if not EMITTED[s] then
    EMITTED[s] = true
    EV_N = EV_N + 1
    EV[EV_N] = s
  end
  return ST_OK, s
end
