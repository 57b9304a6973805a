-- pause.lua: the session's own user pauses an active session: its seat is
-- freed if no other session holds it, and PPU billing stops.
-- KEYS: the account's keys (lib.lua). ARGV[2] session id, ARGV[3] user id.
-- Reply: OK {session}; NOT_FOUND {} (unknown, or another user's);
-- BAD_STATE {session} when it is not active.
local sid, uid = ARGV[2], ARGV[3]

local now = start()
if not now then return reply(ST_NOT_FOUND, {}) end
local s = sess(sid)
if not s or s.user ~= uid then return reply(ST_NOT_FOUND, {}) end
if s.state ~= 'active' then return reply(ST_BAD_STATE, {session = s}) end
settle(s, now)
if s.state ~= 'active' then return reply(ST_BAD_STATE, {session = s}) end
detach(s, now)
s.state = 'paused'
s.at = now
s.paused_at = now
s.paused_until = now + dur('paused')
touch(s)
emit({type = 'session', session = s})
return reply(ST_OK, {session = s})
