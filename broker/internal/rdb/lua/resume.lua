-- resume.lua: the session's own user resumes a paused session, which takes
-- a seat by the seat rules again (prepaid, then PPU) and a new fencing
-- token. Denied, it stays paused.
-- KEYS: the account's keys (lib.lua). ARGV[2] session id, ARGV[3] user id.
-- Reply: OK {session}; NOT_FOUND {}; BAD_STATE {session} when not paused;
-- USER_BLOCKED/USER_LIMIT/ACCOUNT_LIMIT/PPU_EXHAUSTED {own}.
local sid, uid = ARGV[2], ARGV[3]

local now = start()
if not now then return reply(ST_NOT_FOUND, {}) end
local s = sess(sid)
if not s or s.user ~= uid then return reply(ST_NOT_FOUND, {}) end
if s.state ~= 'paused' then return reply(ST_BAD_STATE, {session = s}) end
local u = user(uid)
if not u then return reply(ST_NOT_FOUND, {}) end
-- acquire writes nothing on denial, so the session is left as it was
local status = acquire(s, u, now)
if status ~= ST_OK then
  SDIRTY[sid] = nil
  return reply(status, {own = own_sessions(uid)})
end
s.fence = next_fence()
s.paused_at = nil
activate(s, now)
emit({type = 'session', session = s})
return reply(ST_OK, {session = s})
