-- token_put.lua: files a token in its account's list, and drops from the
-- list the tokens that have expired (their global lookup is gone already:
-- it expires with its TTL), so the list holds live tokens only and "sign
-- out everywhere" reads no more than those.
-- KEYS[1] the account's tokens hash (token hash -> record),
-- KEYS[2] the account's token expiries (sorted set: token hash -> ms).
-- ARGV[1] the token's hash, ARGV[2] its record (JSON), ARGV[3] its expiry
-- (ms). Reply: how many expired tokens it dropped (at most 256 a call).
local hash, rec, exp = ARGV[1], ARGV[2], tonumber(ARGV[3])
if not exp or hash == '' or rec == '' then
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
return #old
