-- resume.lua: the session's own user resumes a paused session, which takes
-- a seat by the seat rules again (prepaid, then PPU) and a new fencing
-- token. Denied, it stays paused.
-- Arguments: a1 session id, a2 user id.
-- Reply: OK, the session itself; NOT_FOUND {}; BAD_STATE {session} when not paused;
-- USER_BLOCKED/USER_LIMIT/ACCOUNT_LIMIT/PPU_EXHAUSTED {own}.
OPS['resume'] = function(a1, a2)
  local sid, uid = a1, a2

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  local s = sess(sid)
  if not s or s.user ~= uid then return ST_NOT_FOUND, {} end
  if LAGGING then overdue(s, now) end
  if s.state ~= 'paused' then return ST_BAD_STATE, {session = s} end
  local u = user(uid)
  if not u then return ST_NOT_FOUND, {} end
  -- acquire changes nothing on denial, so the session is left as it was
  -- (and as earlier operations of this call left it: they are written)
  local status = acquire(s, u, now)
  if status ~= ST_OK then return status, {own = own_sessions(uid)} end
  upaused_drop(uid, sid)
  s.fence = next_fence()
  if s.paused_at then s.paused_at = nil end
  activate(s, now)
  emit_session(s)
  return ST_OK, s
end
