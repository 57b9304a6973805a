-- due_set.lua: refile an account in the global timer index, unless another
-- node moved it since this one read it (compare and set). The reaper runs
-- it after a reap, with the next timer the reap saw; as this can raise the
-- entry past a timer an operation filed since, the reaper then reads the
-- account's first timer and lowers the entry to it (reaper.go, pullDown).
-- KEYS[1] the global index (zset: account id -> next timer, ms).
-- ARGV[1] account id, ARGV[2] the score read before ("" for absent),
-- ARGV[3] the new score ("-1" to remove).
-- Reply: {0} when set, {1} when the score had moved and was left alone
-- (reaper.go, dueSetDone and dueSetMoved).
local index, id, seen, score = KEYS[1], ARGV[1], ARGV[2], ARGV[3]

if (seen ~= '' and not tonumber(seen)) or not tonumber(score) then
  return redis.error_reply('ERR seatbroker: due_set: bad score')
end
local cur = redis.call('ZSCORE', index, id)
if seen == '' then
  if cur then return {1} end
elseif not cur or tonumber(cur) ~= tonumber(seen) then
  return {1}
end
if score == '-1' then
  redis.call('ZREM', index, id)
else
  redis.call('ZADD', index, score, id)
end
return {0}
