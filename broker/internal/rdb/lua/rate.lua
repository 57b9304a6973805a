-- rate.lua: a GCRA rate limit (the algorithm of go-redis/redis_rate): at
-- most `burst` requests at once, refilled at one per `period`/`rate`.
-- KEYS[1] the limit's state (string: the theoretical arrival time, ms).
-- ARGV[1] rate (requests per period), ARGV[2] period (ms), ARGV[3] burst,
-- ARGV[4] "take" to take one request, "refund" to give one taken request
-- back (a request that turned out not to count).
-- Reply: {allowed (0/1; a refund is always 1), retry after (ms), remaining}.
local key = KEYS[1]
local rate, period, burst, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = period / rate
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', key) or '0')
if tat < now then tat = now end

if mode == 'refund' then
  -- the limit has refilled past what was taken: nothing to give back, and
  -- never more than the burst
  local new_tat = math.max(tat - interval, now)
  if new_tat <= now then
    redis.call('DEL', key)
  else
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil(new_tat - now) + 1)
  end
  return {1, 0, math.floor((now - (new_tat - tolerance)) / interval)}
end

local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, math.ceil(allow_at - now), 0}
end
redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil(new_tat - now) + 1)
return {1, 0, math.floor((now - allow_at) / interval)}
