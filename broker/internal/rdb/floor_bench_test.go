package rdb

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

// floorLua is the floor of the serial probe: the least a Redis function
// can do for an open and a close that store and publish every change.
// Per open it looks the new session id up (a retried open), looks the
// seat up, counts it, makes the session's JSON by concatenation and
// publishes it; per close it takes the session from a table kept from the
// open (as the account code's DECODED does), makes its ended JSON and
// publishes it. A call reads the account's two counters once and writes
// the sessions, seats, timers and counters once each. None of the seat
// rules, users, retention, catch-up or PPU of the account code: it is a
// yardstick for what the account code costs beyond the bare writes, not
// a design.
const floorLua = `#!lua name=seatbroker_floor
local KEPT = {}
local function cycle(keys, argv)
  local ks, kseats, kacct, kdue, kch = keys[1], keys[2], keys[3], keys[4], keys[5]
  local t = redis.call('TIME')
  local now = t[1] .. string.sub(t[2] .. '000', 1, 3)
  local c = redis.call('HMGET', kacct, 'used', 'fence')
  local used, fence = tonumber(c[1] or '0'), tonumber(c[2] or '0')
  local hs, seats, hd, za, zr, out = {}, {}, {}, {}, {}, {}
  local i, n = 1, #argv
  while i <= n do
    local js
    if argv[i] == 'open' then
      local sid, uid, dev = argv[i + 1], argv[i + 2], argv[i + 3]
      i = i + 4
      if redis.call('HGET', ks, sid) then return redis.error_reply('ERR floor: open twice') end
      local key = uid .. '|' .. dev
      if not redis.call('HGET', kseats, key) then used = used + 1 end
      fence = fence + 1
      js = '{"id":"' .. sid .. '","user":"' .. uid .. '","device":"' .. dev ..
        '","state":"active","at":"' .. now .. '","fence":"' .. fence .. '"}'
      KEPT[sid] = {uid, dev, key}
      hs[#hs + 1] = sid; hs[#hs + 1] = js
      seats[#seats + 1] = key; seats[#seats + 1] = sid
      za[#za + 1] = now; za[#za + 1] = sid
    else
      local sid = argv[i + 1]
      i = i + 2
      local s = KEPT[sid]
      if not s then return redis.error_reply('ERR floor: not kept') end
      KEPT[sid] = nil
      used = used - 1
      js = '{"id":"' .. sid .. '","user":"' .. s[1] .. '","device":"' .. s[2] ..
        '","state":"ended","at":"' .. now .. '","reason":"closed"}'
      hs[#hs + 1] = sid; hs[#hs + 1] = js
      hd[#hd + 1] = s[3]
      zr[#zr + 1] = sid
    end
    redis.call('PUBLISH', kch, js)
    out[#out + 1] = js
  end
  redis.call('HSET', ks, unpack(hs))
  if #seats > 0 then redis.call('HSET', kseats, unpack(seats)) end
  if #hd > 0 then redis.call('HDEL', kseats, unpack(hd)) end
  if #za > 0 then redis.call('ZADD', kdue, unpack(za)) end
  if #zr > 0 then redis.call('ZREM', kdue, unpack(zr)) end
  redis.call('HSET', kacct, 'used', used, 'fence', fence)
  return out
end
redis.register_function('seatbroker_floor', cycle)
`

// floorCycle runs the floor as the probe runs the account code: calls of
// per opens, then calls of per closes, while 64 other sessions stay open.
func floorCycle(b *testing.B) {
	c := testredis.Client(b)
	ctx := context.Background()
	if err := c.FunctionLoadReplace(ctx, floorLua).Err(); err != nil {
		b.Fatal(err)
	}
	p := testredis.Prefix(b)
	keys := []string{p + "{a1}:sessions", p + "{a1}:seats", p + "{a1}:acct", p + "{a1}:due", p + "{a1}:events"}
	// one long member each, as the account code's marker: a hash or
	// sorted set of few short members is a listpack, where every lookup
	// is a scan, which the account code's keys never are
	long := strings.Repeat("m", 70)
	for _, k := range keys[:2] {
		if err := c.HSet(ctx, k, long, "").Err(); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.ZAdd(ctx, keys[3], redis.Z{Score: 1e15, Member: long}).Err(); err != nil {
		b.Fatal(err)
	}
	run := func(args []any) {
		if err := c.FCall(ctx, "seatbroker_floor", keys, args...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	var held []any
	for i := range 64 {
		held = append(held, "open", uuid.NewString(), probeUser(2, i), "desk")
	}
	run(held)
	const per = 12
	rounds := (b.N + per - 1) / per
	mark := startCycles(b, c)
	for r := range rounds {
		opens := make([]any, 0, 4*per)
		closes := make([]any, 0, 2*per)
		for i := range per {
			sid := uuid.NewString()
			opens = append(opens, "open", sid, probeUser(1, (r*per+i)%64), "desk")
			closes = append(closes, "close", sid)
		}
		run(opens)
		run(closes)
	}
	b.StopTimer()
	reportCycles(b, c, mark, rounds*per)
}
