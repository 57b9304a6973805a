-- join.lua: the remote side joins a standby session by its code; the
-- session becomes active. A code works once.
-- Arguments: a1 session id, a2 code.
-- Reply: OK, the session itself; NOT_FOUND {} when the session does not exist, the
-- code does not match, or the session is no longer waiting for its remote
-- side.
OPS['join'] = function(a1, a2)
  local sid, code = a1, a2

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  local s = sess(sid)
  if not s or s.code ~= code then return ST_NOT_FOUND, {} end
  if LAGGING then overdue(s, now) end
  -- its first minute comes after those that started before it (which may
  -- run the balance out and end it: standby on PPU at balance 0)
  if s.kind == 'ppu' then before_ppu_grant(now) end
  if s.state ~= 'standby' then return ST_NOT_FOUND, {} end
  s.joined = num_str(now)
  activate(s, now)
  emit_session(s)
  return ST_OK, s
end
