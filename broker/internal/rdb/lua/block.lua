-- block.lua: block or unblock a user. Blocking ends all the user's sessions
-- the way End Selected Sessions does, with reason user_blocked; a blocked
-- user gets no seat.
-- KEYS: the account's keys (lib.lua). ARGV[2] user id, ARGV[3] "1" to block
-- or "0" to unblock, ARGV[4] who did it.
-- Reply: OK {user, ended = number of sessions given the notice or ended};
-- NOT_FOUND {}.
local uid, block, by = ARGV[2], ARGV[3] == '1', ARGV[4]

local now = start()
if not now then return reply(ST_NOT_FOUND, {}) end
local u = user(uid)
if not u then return reply(ST_NOT_FOUND, {}) end
u.status = block and 'blocked' or 'active'
redis.call('HSET', K_USERS, uid, cjson.encode(u))
local n = 0
if block then
  local all = redis.call('HVALS', K_SESS)
  for _, raw in ipairs(all) do
    local s = cjson.decode(raw)
    if s.user == uid and s.state ~= 'ended' and s.state ~= 'terminating' then
      s = sess(s.id)
      terminate(s, 'user_blocked', by, now)
      n = n + 1
    end
  end
end
emit({type = 'user', user = u})
return reply(ST_OK, {user = u, ended = n})
