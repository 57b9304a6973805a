-- reap.lua: fire the timers of an account that fell due (leases, notices,
-- standby and paused times, PPU minutes, retention of ended sessions), in
-- time order.
-- KEYS: the account's keys (lib.lua). ARGV[2] most timers to fire.
-- Reply: OK {steps, next = the account's next timer in ms or -1}.
local limit = tonumber(ARGV[2])

if not acct() then return reply(ST_NOT_FOUND, {next = -1}) end
local now = now_ms()
local n = catch_up(now, limit)
local nxt = first_due()
return reply(ST_OK, {steps = n, next = nxt and string.format('%.0f', nxt) or '-1', now = now})
