-- account_create.lua: create an account with its settings and its owner.
-- KEYS: the account's keys (lib.lua). ARGV[2] account id, ARGV[3] JSON
-- object of settings (strings), ARGV[4] owner user JSON.
-- Reply: OK {}; EXISTS {} when the account exists already.
local id, fields, owner = ARGV[2], cjson.decode(ARGV[3]), ARGV[4]

if redis.call('EXISTS', K_ACCT) == 1 then return reply(ST_EXISTS, {}) end
local flat = {'id', id, 'created', tostring(now_ms()), 'used', '0', 'ppu_sess', '0', 'balance', '0', 'fence', '0'}
for f, v in pairs(fields) do
  flat[#flat + 1] = f
  flat[#flat + 1] = v
end
redis.call('HSET', K_ACCT, unpack(flat))
local u = cjson.decode(owner)
redis.call('HSET', K_USERS, u.id, owner)
redis.call('HSET', K_NAMES, string.lower(u.name), u.id)
return reply(ST_OK, {})
