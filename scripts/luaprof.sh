#!/usr/bin/env bash
# Counts the Lua bytecodes the account code runs per open+close cycle, per
# source line or per function, outside Redis: the account code (joined as
# scripts.go joins it) runs in a stock lua5.1 with lua-cjson, against a
# small in-memory stand-in for the redis.call commands it uses, with a
# count hook. In Redis a bytecode costs ~50 instructions and a Lua function
# call ~250 more (docs/benchmarks.md), so this shows where the account
# code's own time goes, which callgrind on redis-server cannot (the Lua VM
# is one function there).
#
#   scripts/luaprof.sh [lines|funcs|calls] [ops per call, default 12] [rounds, default 200]
#
# Needs lua5.1 and lua-cjson (apt-get install lua5.1 lua-cjson). A tool for
# work on the Lua code, not a test: the stand-in is not Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-funcs}
per=${2:-12}
rounds=${3:-200}
command -v lua5.1 >/dev/null || { echo "luaprof: needs lua5.1 and lua-cjson (apt-get install lua5.1 lua-cjson)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dir=broker/internal/rdb/lua
# the operations and their arities, from scripts.go's accountOps
ops=$(grep -o '{op[A-Za-z]*, [0-9]*}' broker/internal/rdb/scripts.go)
arity=""
files=""
while read -r name n; do
  op=$(grep -o "${name} *= \"[a-z_]*\"" broker/internal/rdb/scripts.go | head -1 | sed 's/.*"\(.*\)"/\1/')
  arity="${arity}['${op}'] = ${n}, "
  files="$files $op"
done < <(echo "$ops" | sed 's/{\(op[A-Za-z]*\), \([0-9]*\)}/\1 \2/')
{
  cat "$dir/lib.lua"; echo; cat "$dir/rules.lua"; echo; cat "$dir/timers.lua"
  for op in $files; do echo; cat "$dir/$op.lua"; done
  echo; echo "local ARITY = {${arity}}"; cat "$dir/main.lua"; echo; echo "return reset, main"
} > "$tmp/account.lua"
cat > "$tmp/harness.lua" <<'LUA'
cjson = require('cjson')
local DB = {}
local T = 1796000000000000 -- µs
local function h(k) local t = DB[k]; if not t then t = {}; DB[k] = t end; return t end
local ncalls = {}
local function zsorted(z)
  local arr = {}
  for m, sc in pairs(z) do arr[#arr + 1] = {m, sc} end
  table.sort(arr, function(a, b) if a[2] ~= b[2] then return a[2] < b[2] end return a[1] < b[1] end)
  return arr
end
redis = {}
redis.error_reply = function(m) return {err = m} end
redis.call = function(cmd, key, ...)
  local a = {...}
  ncalls[cmd] = (ncalls[cmd] or 0) + 1
  if cmd == 'TIME' then T = T + 7; return {tostring(math.floor(T / 1e6)), tostring(T % 1e6)} end
  if cmd == 'HGET' then local v = h(key)[a[1]]; if v == nil then return false end return v end
  if cmd == 'HSET' then local t = h(key); for i = 1, #a, 2 do t[a[i]] = a[i + 1] end return 1 end
  if cmd == 'HDEL' then local t = h(key); for i = 1, #a do t[a[i]] = nil end return 1 end
  if cmd == 'HGETALL' then local out = {}; for k, v in pairs(h(key)) do out[#out + 1] = k; out[#out + 1] = v end return out end
  if cmd == 'HLEN' then local n = 0; for _ in pairs(h(key)) do n = n + 1 end return n end
  if cmd == 'SCARD' then local n = 0; for _ in pairs(h(key)) do n = n + 1 end return n end
  if cmd == 'SADD' then local t = h(key); for i = 1, #a do t[a[i]] = true end return 1 end
  if cmd == 'SREM' then local t = h(key); for i = 1, #a do t[a[i]] = nil end return 1 end
  if cmd == 'HEXISTS' then return h(key)[a[1]] and 1 or 0 end
  if cmd == 'EXISTS' then return (DB[key] and next(DB[key])) and 1 or 0 end
  if cmd == 'PUBLISH' then return 0 end
  if cmd == 'ZADD' then
    local t = h(key)
    if a[1] == 'LT' then
      local sc = tonumber(a[2]); if t[a[3]] == nil or sc < t[a[3]] then t[a[3]] = sc end; return 1
    end
    for i = 1, #a, 2 do t[a[i + 1]] = tonumber(a[i]) end return 1
  end
  if cmd == 'RPUSH' then local t = h(key); for i = 1, #a do t[#t + 1] = a[i] end return #t end
  if cmd == 'LRANGE' then
    local t, out = h(key), {}
    for i = tonumber(a[1]) + 1, math.min(#t, tonumber(a[2]) + 1) do out[#out + 1] = t[i] end
    return out
  end
  if cmd == 'LTRIM' then
    local t, k, nt = h(key), tonumber(a[1]), {}
    for i = k + 1, #t do nt[#nt + 1] = t[i] end
    DB[key] = nt; return 'OK'
  end
  if cmd == 'ZREM' then local t = h(key); for i = 1, #a do t[a[i]] = nil end return 1 end
  if cmd == 'ZRANGE' then
    local arr = zsorted(h(key)); local out = {}
    local s, e = tonumber(a[1]), tonumber(a[2]); if e < 0 then e = #arr + e end
    for i = s + 1, math.min(e + 1, #arr) do out[#out + 1] = arr[i][1]; if a[3] == 'WITHSCORES' then out[#out + 1] = tostring(arr[i][2]) end end
    return out
  end
  if cmd == 'ZRANGEBYSCORE' then
    local arr = zsorted(h(key)); local out = {}
    local mx = a[2]; local excl = mx:sub(1, 1) == '('; if excl then mx = mx:sub(2) end; mx = tonumber(mx)
    local lim = a[5] and tonumber(a[5]) or 1e9
    for _, p in ipairs(arr) do
      if (excl and p[2] < mx) or (not excl and p[2] <= mx) then if #out < lim then out[#out + 1] = p[1] end end
    end
    return out
  end
  error('unhandled ' .. cmd)
end
local reset, main = dofile(os.getenv('LUAPROF_CODE'))
local KEYS = {'acct', 'users', 'sess', 'seats', 'ppuq', 'due', 'ledger', 'billed', 'chan', 'names', 'ret'}
local DEF = '3600000 60000 60000 30000 60000 1000 100 100000 '
local function run(ops)
  local argv = {DEF, tostring(#ops)}
  for _, o in ipairs(ops) do
    argv[#argv + 1] = o[1]
    for i = 2, #o do argv[#argv + 1] = o[i] end
  end
  reset(KEYS, argv)
  local out = main(argv)
  if out.err then error(out.err) end
  for i = 1, #ops do if out[2 * i] ~= 0 then error(ops[i][1] .. ' status ' .. tostring(out[2 * i]) .. ' ' .. tostring(out[2*i+1])) end end
  return out
end
local function uid(g, i) return string.format('%08d-0000-4000-8000-%012d', g, i) end
local nsid = 0
local function sid() nsid = nsid + 1; return string.format('%08x-1111-4000-8000-%012d', nsid, nsid) end
run({{'account_create', 'a1', '{"seats":"100000"}', cjson.encode({id = 'owner', name = 'owner', status = 'active', role = 'member'})}})
for g = 1, 2 do for i = 0, 63 do
  run({{'user_put', cjson.encode({id = uid(g, i), name = 'u' .. g .. '_' .. i, status = 'active', role = 'member'}), '1', '50000'}})
end end
local held = {}
for i = 0, 63 do held[#held + 1] = {'open', sid(), uid(2, i), 'desk', 'host', ''} end
run(held)
local PER, ROUNDS = tonumber(arg[3] or 12), tonumber(arg[1] or 200)
local PROFILE = arg[2] == 'prof' or arg[2] == 'func' or arg[2] == 'calls'
CALLS = arg[2] == 'calls'
BYFUNC = arg[2] == 'func'
local counts = {}
local function hook()
  local info = debug.getinfo(2, 'Sl')
  if info.source == '@' .. os.getenv('LUAPROF_CODE') then
    local k = BYFUNC and info.linedefined or info.currentline
    counts[k] = (counts[k] or 0) + 1
  end
end
local k = 0
for r = 1, ROUNDS do
  if r == math.floor(ROUNDS / 2) and PROFILE then
    if CALLS then debug.sethook(function()
        local info = debug.getinfo(2, 'Sn')
        local k = (info.source == '@' .. os.getenv('LUAPROF_CODE') and ('L' .. info.linedefined) or (info.what .. ':' .. tostring(info.name)))
        counts[k] = (counts[k] or 0) + 1
      end, 'c')
    else debug.sethook(hook, '', 1) end
    ncalls = {}
  end
  local opens, closes = {}, {}
  for i = 1, PER do
    local s, u = sid(), uid(1, k % 64); k = k + 1
    opens[i] = {'open', s, u, 'desk', 'host', ''}
  end
  local out = run(opens)
  for i = 1, PER do
    -- the desktop side closes with its grant's fencing token
    local o = opens[i]
    closes[i] = {'close', o[2], o[3], cjson.decode(out[2 * i + 1]).fence, o[3], 'closed'}
  end
  run(closes)
  T = T + 2000 -- 2 ms per round
end
debug.sethook()
if PROFILE then
  local cycles = (ROUNDS - math.floor(ROUNDS / 2) + 1) * PER
  local lines = {}
  for l in io.lines(os.getenv('LUAPROF_CODE')) do lines[#lines + 1] = l end
  local arr, total = {}, 0
  for l, c in pairs(counts) do arr[#arr + 1] = {l, c}; total = total + c end
  table.sort(arr, function(a, b) return a[2] > b[2] end)
  print(string.format('bytecodes per cycle: %.0f', total / cycles))
  for c, n in pairs(ncalls) do io.write(string.format('%s %.2f  ', c, n / cycles)) end print()
  for i = 1, math.min(tonumber(os.getenv("LUAPROF_TOP") or 70), #arr) do
    print(string.format('%7.1f  %5s  %s', arr[i][2] / cycles, tostring(arr[i][1]), lines[tonumber((tostring(arr[i][1]):gsub('^L','')))] or '?'))
  end
end
LUA
case $mode in
  lines) m=prof ;;
  funcs) m=func ;;
  calls) m=calls ;;
  *) echo "luaprof: mode is lines, funcs or calls" >&2; exit 2 ;;
esac
LUAPROF_CODE="$tmp/account.lua" lua5.1 "$tmp/harness.lua" "$rounds" "$m" "$per"
