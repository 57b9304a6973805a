-- close.lua: a participant closes a session: it ends at once. The desktop
-- side closes as its user, and only that user's sessions, with the fencing
-- token of its grant; the remote side (checked by the broker: it is
-- connected to this session) closes with no user and no token.
-- Arguments: a1 session id, a2 user id ("" for the remote side), a3 the
-- closer's fencing token ("" when it holds none), a4 who closed it, a5
-- reason.
-- Reply: OK, the session itself (an ended one as it ended); NOT_FOUND {}
-- (unknown, or another user's); STALE {} (a token that is not the
-- session's current one: another grant replaced it); FORBIDDEN {} (the
-- remote side, while the session is paused: only its user acts on a
-- paused session, SPEC.md).
OPS['close'] = function(a1, a2, a3, a4, a5)
  local sid, uid, fence, by, reason = a1, a2, a3, a4, a5

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  local s = sess(sid)
  if not s or (uid ~= '' and s.user ~= uid) then return ST_NOT_FOUND, {} end
  if fence ~= '' and s.fence ~= fence then return ST_STALE, {} end
  if LAGGING then overdue(s, now) end
  if uid == '' and s.state == 'paused' then return ST_FORBIDDEN, {} end
  end_session(s, reason, by, now)
  return ST_OK, s
end
