-- pause.lua: the session's own user pauses an active session: its seat is
-- freed if no other session holds it, and PPU billing stops.
-- Arguments: a1 session id, a2 user id.
-- Reply: OK, the session itself; NOT_FOUND {} (unknown, or another user's);
-- BAD_STATE {session} when it is not active.
OPS['pause'] = function(a1, a2)
  local sid, uid = a1, a2

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  local s = sess(sid)
  if not s or s.user ~= uid then return ST_NOT_FOUND, {} end
  if s.state ~= 'active' then return ST_BAD_STATE, {session = s} end
  settle(s, now)
  if s.state ~= 'active' then return ST_BAD_STATE, {session = s} end
  detach(s, now)
  s.state = 'paused'
  s.at = num_str(now)
  s.paused_at = s.at
  s.paused_until = num_str(now + dur('paused'))
  touch(s)
  emit_session(s)
  return ST_OK, s
end
