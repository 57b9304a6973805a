-- join.lua: the remote side joins a standby session by its code; the
-- session becomes active. A code works once.
-- KEYS: the account's keys (lib.lua). ARGV[2] session id, ARGV[3] code.
-- Reply: OK {session}; NOT_FOUND {} when the session does not exist, the
-- code does not match, or the session is no longer waiting for its remote
-- side.
local sid, code = ARGV[2], ARGV[3]

local now = start()
if not now then return reply(ST_NOT_FOUND, {}) end
local s = sess(sid)
if not s or s.state ~= 'standby' or s.code ~= code then return reply(ST_NOT_FOUND, {}) end
s.joined = now
activate(s, now)
emit({type = 'session', session = s})
return reply(ST_OK, {session = s})
