-- token_put.lua: files a token in its account's list, and drops from the
-- list the tokens that have expired (their global lookup is gone already:
-- it expires with its TTL), so the list holds live tokens only and "sign
-- out everywhere" reads no more than those. It also files the token in
-- its user's list and names the user's tokens past the most a user may
-- hold, those that expire first (never the new one): the caller revokes
-- them (global lookup first, which is outside this slot).
-- KEYS[1] the account's tokens hash (token hash -> record),
-- KEYS[2] the account's token expiries (sorted set: token hash -> ms),
-- KEYS[3] the user's token expiries (sorted set: token hash -> ms).
-- ARGV[1] the token's hash, ARGV[2] its record (JSON), ARGV[3] its expiry
-- (ms), ARGV[4] the most live tokens a user may hold.
-- Reply: {0, how many expired tokens it dropped (at most 256 a call), the
-- hashes of the user's tokens to revoke...}.
local hash, rec, exp, max = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if not exp or not max or hash == '' or rec == '' then
  return redis.error_reply('ERR seatbroker: bad token record')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 256)
if #old > 0 then
  redis.call('HDEL', KEYS[1], unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
end
redis.call('HSET', KEYS[1], hash, rec)
redis.call('ZADD', KEYS[2], exp, hash)

redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZADD', KEYS[3], exp, hash)
local ttl = redis.call('PTTL', KEYS[3])
if ttl < 0 or now + ttl < exp then redis.call('PEXPIREAT', KEYS[3], exp) end
local reply = {0, #old}
local over = redis.call('ZCARD', KEYS[3]) - max
if over > 0 then
  for _, h in ipairs(redis.call('ZRANGE', KEYS[3], 0, over)) do
    if h ~= hash and #reply < over + 2 then reply[#reply + 1] = h end
  end
end
return reply
