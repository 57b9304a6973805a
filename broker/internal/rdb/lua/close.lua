-- close.lua: a participant closes a session: it ends at once. The desktop
-- side closes as its user, and only that user's sessions; the remote side
-- (checked by the broker: it is connected to this session) closes with no
-- user.
-- Arguments: a1 session id, a2 user id ("" for the remote side), a3
-- who closed it, a4 reason.
-- Reply: OK, the session itself; NOT_FOUND {} (unknown, or another user's).
OPS['close'] = function(a1, a2, a3, a4)
  local sid, uid, by, reason = a1, a2, a3, a4

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  local s = sess(sid)
  if not s or (uid ~= '' and s.user ~= uid) then return ST_NOT_FOUND, {} end
  end_session(s, reason, by, now)
  return ST_OK, s
end
