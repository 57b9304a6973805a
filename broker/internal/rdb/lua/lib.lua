-- lib.lua: what every account operation shares. The account script is
-- this file, then one file per operation (open.lua, end.lua, ...; each
-- defines OPS['<name>']), then main.lua, which runs a batch of operations of
-- one account in order and writes back once: several callers' operations
-- of one account share one script call (the batcher in batch.go groups
-- what is in flight), and each is still atomic.
--
-- The account script takes these KEYS, all under the account's hash tag:
--   KEYS[1]  acct    hash  settings and counters of the account
--   KEYS[2]  users   hash  user id -> user JSON
--   KEYS[3]  sess    hash  session id -> session JSON
--   KEYS[4]  seats   hash  seat key -> seat JSON {kind, user, since, sids},
--                          and "@" user id -> JSON set of the seat keys the
--                          user holds (a seat key never starts with "@": it
--                          starts with a user or session id). One hash, not
--                          two: a hash of small values stays a listpack, where
--                          every lookup is a scan, until it has 128 fields;
--                          seat records are too big for that, so this hash
--                          is a real hash table from its first seat on.
--   KEYS[5]  ppuq    zset  seat keys running on PPU, scored by when they began waiting
--   KEYS[6]  due     zset  session id -> when its next timer fires (ms, Redis clock)
--   KEYS[7]  ledger  list  PPU ledger entries (JSON), oldest first
--   KEYS[8]  billed  hash  idempotency key ("sid:minute" or a top-up key) -> ledger index
--   KEYS[9]  channel       the account's pub/sub channel (in KEYS for its hash tag)
--   KEYS[10] names   hash  lower-cased user name -> user id (names are unique)
-- ARGV[1] is the broker's defaults, numbers separated by spaces (a string
-- match is cheaper than JSON, and it is read on every call):
--   "lease standby paused notice minute retention catchup warn,warn,..."
--   (durations in ms; the low-balance warnings in minutes, maybe none)
-- ARGV[2] is the number of operations, then each operation as its name,
-- its number of arguments and the arguments: "open" "5" sid uid ...
--
-- The reply is {next due, status 1, payload 1, status 2, payload 2, ...}:
-- next due is the account's earliest timer when it moved earlier during
-- this script, else ""; per operation, status is one of the ST_ constants
-- (mirrored in status.go) and payload a JSON string. Each operation's
-- function returns its status and payload table, or its status, a session
-- and true: then the payload is that session's JSON (the one write-back
-- made, not encoded again). Payloads and events show sessions as they are
-- when the script ends (the batch commits as one).

-- The same code runs as a Redis function (FCALL; library built once, see
-- scripts.go) or as a script (EVALSHA; Redis before 7, and miniredis).
-- Either way it keeps no state from one call to the next: reset sets all
-- of it at the start of each call.

-- the call's state, set by reset
local K_ACCT, K_USERS, K_SESS, K_SEATS
local K_PPUQ, K_DUE, K_LEDGER, K_BILLED, K_CHANNEL, K_NAMES
local CFG, CFG_SRC -- the broker's defaults, and the string they came from
local LATE        -- functions run after the last write-back (see reap.lua)
local NOW_US      -- the call's instant: one TIME call serves it all
local A           -- the account hash, loaded once per call
local EV          -- events to publish
local EMITTED     -- session table -> true once a session event carries it
local SESSJSON    -- session table -> its JSON, as the last flush wrote it
local S           -- session cache: sid -> session table (false when absent)
local SDIRTY      -- sid -> true when the session must be written back
local SEATS       -- seat key -> seat table (false when absent)
local SEATDIRTY
local USEATS      -- uid -> set of seat keys
local USEATDIRTY
local EXHAUSTING  -- true while exhaust runs: nothing is billed then
local DUE_BEFORE  -- the account's first timer before this call
local MIN_ADDED   -- the earliest timer this call filed
local FILED_MIN   -- the earliest timer the last flush filed
local DUE_SEEN    -- catch_up has looked at the first timer
local CAUGHT_UP   -- catch_up ran
local NUMSTR      -- number -> its decimal string (see num_str)
local DUR         -- duration name -> ms, for this call
local STRNUM      -- decimal string -> its number (see num_str)

local function reset(keys, argv)
  K_ACCT, K_USERS, K_SESS, K_SEATS = keys[1], keys[2], keys[3], keys[4]
  K_PPUQ, K_DUE, K_LEDGER, K_BILLED, K_CHANNEL = keys[5], keys[6], keys[7], keys[8], keys[9]
  K_NAMES = keys[10]
  if argv[1] ~= CFG_SRC then
    -- parsed again only when the defaults change: as a function, the
    -- last call's CFG is still here (it depends on argv[1] alone)
    CFG = {}
    local l, sb, p, n, m, r, c, w = string.match(argv[1], '^(%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) ?([%d,]*)$')
    CFG.lease, CFG.standby, CFG.paused, CFG.notice = tonumber(l), tonumber(sb), tonumber(p), tonumber(n)
    CFG.minute, CFG.retention, CFG.catchup = tonumber(m), tonumber(r), tonumber(c)
    CFG.warn = {}
    for x in string.gmatch(w or '', '%d+') do CFG.warn[#CFG.warn + 1] = tonumber(x) end
    CFG_SRC = argv[1]
  end
  LATE, NOW_US, A = {}, nil, nil
  EV, EMITTED, SESSJSON = {}, {}, {}
  S, SDIRTY, SEATS, SEATDIRTY, USEATS, USEATDIRTY = {}, {}, {}, {}, {}, {}
  EXHAUSTING, DUE_BEFORE, MIN_ADDED, FILED_MIN, DUE_SEEN, CAUGHT_UP = false, nil, nil, nil, false, false
  NUMSTR, STRNUM, DUR = {}, {}, {}
end

local ST_OK, ST_NOT_FOUND, ST_FORBIDDEN, ST_USER_BLOCKED = 0, 1, 2, 3
local ST_USER_LIMIT, ST_ACCOUNT_LIMIT, ST_PPU_EXHAUSTED = 4, 5, 6
local ST_BAD_STATE, ST_STALE, ST_EXISTS, ST_INVALID = 7, 8, 9, 10

local OPS = {}  -- operation name -> function(args): status, payload

local function now_us()
  if not NOW_US then
    local t = redis.call('TIME')
    NOW_US = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return NOW_US
end

local function now_ms()
  return math.floor(now_us() / 1000)
end

-- Numbers and strings. Formatting a number the way Lua and cjson do
-- (printf "%.14g", or "%.17g" for a redis.call argument) costs more than
-- anything else a script does with it, and parsing one (strtod) not much
-- less. So a session keeps its times and counters as decimal strings, in
-- the table and in its JSON ("created":"1764...": SessionRec reads them
-- with ",string"): a session is decoded and encoded with no number in
-- it. Code that computes with a field reads it with str_num and writes it
-- with num_str; both remember what they converted for the rest of the
-- call, and most values of a call are the same few (now, now + lease).
local function num_str(n)
  local s = NUMSTR[n]
  if not s then
    s = string.format('%d', n)
    NUMSTR[n] = s
    STRNUM[s] = n
  end
  return s
end

-- str_num returns the number of a decimal string, or nil for nil.
local function str_num(s)
  if s == nil then return nil end
  local n = STRNUM[s]
  if not n then
    n = tonumber(s)
    STRNUM[s] = n
  end
  return n
end

-- ---------------------------------------------------------------- account

local function acct()
  if A == nil then
    local flat = redis.call('HGETALL', K_ACCT)
    if #flat == 0 then return nil end
    A = {}
    for i = 1, #flat, 2 do A[flat[i]] = flat[i + 1] end
    A._dirty = {}
  end
  return A
end

-- anum reads a number field of the account; it stays a number in A until
-- flush writes it back.
local function anum(field)
  local v = A[field]
  if type(v) == 'number' then return v end
  v = (v and str_num(v)) or 0
  A[field] = v
  return v
end

-- aset sets a field of the account to a string or a number.
local function aset(field, value)
  A[field] = value
  A._dirty[field] = true
end

local function aadd(field, delta)
  aset(field, anum(field) + delta)
end

-- dur returns an account's override of a duration, or the broker default.
local DUR_FIELD = {lease = 'lease_ms', standby = 'standby_ms', paused = 'paused_ms', notice = 'notice_ms'}

local function dur(name)
  local d = DUR[name]
  if d then return d end
  local v = A and tonumber(A[DUR_FIELD[name]] or '')
  if v and v > 0 then d = v else d = CFG[name] end
  if A then DUR[name] = d end
  return d
end

-- fence returns the next fencing token of the account: it only grows, and
-- because it never falls below Redis's clock in microseconds it keeps
-- growing after a restart or failover that lost the last stored value.
local function next_fence()
  local f = math.max(anum('fence') + 1, now_us())
  aset('fence', f)
  return num_str(f)
end

-- ---------------------------------------------------------------- events


-- emit queues an event for the account's channel.
local function emit(ev)
  EV[#EV + 1] = ev
end

-- emit_session queues the event that session s changed: the session
-- table itself, once, so the message shows its state at the end of the
-- script.
local function emit_session(s)
  if EMITTED[s] then return end
  EMITTED[s] = true
  EV[#EV + 1] = s
end

-- Payloads and events are encoded by cjson.encode, whole: it builds the
-- text in one C buffer and makes one Lua string of it. Splicing each
-- session's JSON from write-back into a list of pieces and joining them
-- costs more (table.concat makes and hashes intermediate strings: Redis's
-- Lua hashes every string it makes, whole).

-- ---------------------------------------------------------------- users

local function user(uid)
  local r = redis.call('HGET', K_USERS, uid)
  if not r then return nil end
  return cjson.decode(r)
end


-- ---------------------------------------------------------------- sessions


local function sess(sid)
  local s = S[sid]
  if s == nil then
    local r = redis.call('HGET', K_SESS, sid)
    if r then s = cjson.decode(r) else s = false end
    S[sid] = s
  end
  return s or nil
end

local function touch(s)
  S[s.id] = s
  SDIRTY[s.id] = true
end

local function holds_seat(s)
  return s.state == 'standby' or s.state == 'active' or s.state == 'terminating'
end

-- ---------------------------------------------------------------- seats


local function seat(key)
  local st = SEATS[key]
  if st == nil then
    local r = redis.call('HGET', K_SEATS, key)
    if r then st = cjson.decode(r) else st = false end
    SEATS[key] = st
  end
  return st or nil
end

local function useats(uid)
  local u = USEATS[uid]
  if u == nil then
    local r = redis.call('HGET', K_SEATS, '@' .. uid)
    if r then u = cjson.decode(r) else u = {} end
    USEATS[uid] = u
  end
  return u
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function seat_key(s)
  local mode = A.mode or 'user_device'
  if mode == 'user' then return s.user end
  if mode == 'session' then return s.id end
  return s.user .. '|' .. s.device
end

-- ---------------------------------------------------------------- PPU

local function next_bill(s)
  local at = str_num(s.ppu_at)
  if not at then return nil end
  return at + ((str_num(s.billed) or 0) * CFG.minute - (str_num(s.ppu_ms) or 0))
end

local function start_stretch(s, t)
  if s.kind == 'ppu' and s.state == 'active' and not s.ppu_at then s.ppu_at = num_str(t) end
end

local function stop_stretch(s, t)
  if s.ppu_at then
    s.ppu_ms = num_str((str_num(s.ppu_ms) or 0) + (t - str_num(s.ppu_at)))
    s.ppu_at = nil
  end
end

local function ledger_add(entry, idem)
  local n = redis.call('RPUSH', K_LEDGER, cjson.encode(entry))
  redis.call('HSET', K_BILLED, idem, n - 1)
end


local terminate -- defined below; exhaustion ends sessions

-- exhaust gives every PPU session the ending notice: the balance is 0.
local function exhaust(t)
  if EXHAUSTING then return end
  EXHAUSTING = true
  local keys = redis.call('ZRANGE', K_PPUQ, 0, -1)
  for _, key in ipairs(keys) do
    local st = seat(key)
    if st then
      for sid in pairs(st.sids) do
        local s = sess(sid)
        if s then terminate(s, 'ppu_exhausted', 'system', t) end
      end
    end
  end
  EXHAUSTING = false
end

local function warn_crossed(before, after)
  for _, w in ipairs(CFG.warn or {}) do
    if before > w and after <= w then
      emit({type = 'warning', code = 'ppu_low', balance = after, threshold = w})
    end
  end
end

-- bill_upto bills every PPU minute of s that started by time t, while the
-- balance lasts; a minute that starts at balance 0 exhausts the account.
local function bill_upto(s, t)
  if EXHAUSTING then return end
  while s.ppu_at and s.state == 'active' and s.kind == 'ppu' do
    local nb = next_bill(s)
    if nb > t then return end
    local bal = anum('balance')
    if bal <= 0 then
      exhaust(nb)
      return
    end
    local minute = (str_num(s.billed) or 0) + 1
    local idem = s.id .. ':' .. num_str(minute)
    if redis.call('HEXISTS', K_BILLED, idem) == 0 then
      aset('balance', bal - 1)
      ledger_add({kind = 'minute', session = s.id, user = s.user, minute = minute,
        delta = -1, balance = bal - 1, at = nb}, idem)
      warn_crossed(bal, bal - 1)
    end
    s.billed = num_str(minute)
    touch(s)
    if bal - 1 <= 0 then exhaust(nb) end
  end
end

-- settle ends a PPU stretch at t: minutes that started before t are billed
-- (a minute starting at the very instant the stretch ends is not), and the
-- active time is added up. Billing may exhaust the account on the way.
local function settle(s, t)
  bill_upto(s, t - 1)
  stop_stretch(s, t)
end

-- ---------------------------------------------------------------- seat moves

local function attach(s, key, st)
  st.sids[s.id] = true
  SEATS[key] = st
  SEATDIRTY[key] = true
  s.seat = key
  s.kind = st.kind
  if st.kind == 'ppu' then aadd('ppu_sess', 1) end
  touch(s)
end

-- promote moves the longest-waiting PPU keys onto free prepaid seats.
local function promote(t)
  -- no PPU session means no PPU key waits (ppu_sess counts them)
  if A.promote == '0' or anum('ppu_sess') <= 0 then return end
  while anum('used') < anum('seats') do
    local first = redis.call('ZRANGE', K_PPUQ, 0, 0)
    if #first == 0 then return end
    local key = first[1]
    redis.call('ZREM', K_PPUQ, key)
    local st = seat(key)
    if st then
      for sid in pairs(st.sids) do
        local s = sess(sid)
        if s then
          settle(s, t)
          s.kind = 'prepaid'
          s.promoted = num_str(t)
          s.at = s.promoted
          aadd('ppu_sess', -1)
          touch(s)
          emit_session(s)
        end
      end
      st.kind = 'prepaid'
      SEATDIRTY[key] = true
      aadd('used', 1)
      emit({type = 'promoted', seat = key, user_id = st.user})
    end
  end
end

local function detach(s, t)
  local key = s.seat
  if not key then return end
  local st = seat(key)
  s.seat = nil
  touch(s)
  if not st then return end
  st.sids[s.id] = nil
  SEATDIRTY[key] = true
  if st.kind == 'ppu' then aadd('ppu_sess', -1) end
  if next(st.sids) == nil then
    SEATS[key] = false
    local held = useats(st.user)
    held[key] = nil
    USEATDIRTY[st.user] = true
    if st.kind == 'prepaid' then
      aadd('used', -1)
      promote(t)
    else
      redis.call('ZREM', K_PPUQ, key)
    end
  end
end

-- acquire finds a seat for s by the seat rules, or returns the denial status.
local function acquire(s, u, t)
  if u.status ~= 'active' then return ST_USER_BLOCKED end
  local key = seat_key(s)
  local st = seat(key)
  if st then
    if st.kind == 'ppu' and anum('balance') <= 0 then return ST_PPU_EXHAUSTED end
    attach(s, key, st)
    return ST_OK
  end
  local held = useats(u.id)
  if u.max_seats and count(held) >= u.max_seats then return ST_USER_LIMIT end
  local kind
  if anum('used') < anum('seats') then
    kind = 'prepaid'
    aadd('used', 1)
  elseif A.ppu == '1' and anum('balance') > 0 then
    kind = 'ppu'
    redis.call('ZADD', K_PPUQ, t, key)
  elseif A.ppu == '1' then
    return ST_PPU_EXHAUSTED
  else
    return ST_ACCOUNT_LIMIT
  end
  held[key] = true
  USEATDIRTY[u.id] = true
  attach(s, key, {kind = kind, user = u.id, since = num_str(t), sids = {}})
  return ST_OK
end

-- ---------------------------------------------------------------- transitions

local function end_session(s, reason, by, t)
  if s.state == 'ended' then return end
  if s.state == 'active' then settle(s, t) end
  if holds_seat(s) then detach(s, t) end
  s.state = 'ended'
  s.at = num_str(t)
  s.reason = reason
  if by then s.by = by end
  s.ended_at = s.at
  s.deadline = nil
  touch(s)
  emit_session(s)
end

terminate = function(s, reason, by, t)
  if s.state == 'active' then
    settle(s, t)
    -- billing may have run the balance out and begun the notice already
    if s.state ~= 'active' then return end
    s.state = 'terminating'
    s.at = num_str(t)
    s.reason = reason
    s.by = by
    s.deadline = num_str(t + dur('notice'))
    touch(s)
    emit_session(s)
  elseif s.state == 'standby' or s.state == 'paused' then
    end_session(s, reason, by, t)
  end
end

-- activate starts a session's active time: a lease, and PPU billing.
local function activate(s, t)
  s.state = 'active'
  s.at = num_str(t)
  s.lease_until = num_str(t + dur('lease'))
  s.activated = s.activated or s.at
  s.standby_until = nil
  s.paused_until = nil
  start_stretch(s, t)
  touch(s)
  bill_upto(s, t)
end

-- due returns when the next timer of s fires, or nil.
local function due(s)
  local st = s.state
  if st == 'standby' then return str_num(s.standby_until) end
  if st == 'paused' then return str_num(s.paused_until) end
  if st == 'active' then
    local nb, lease = next_bill(s), str_num(s.lease_until)
    if nb and nb < lease then return nb end
    return lease
  end
  if st == 'terminating' then return math.min(str_num(s.deadline), str_num(s.lease_until)) end
  if st == 'ended' then return str_num(s.ended_at) + CFG.retention end
  return nil
end

-- step fires the timer of s that is due at t.
local function step(s, t)
  local st = s.state
  if st == 'standby' then
    local until_ = str_num(s.standby_until)
    if until_ <= t then end_session(s, 'expired', nil, until_) end
  elseif st == 'paused' then
    local until_ = str_num(s.paused_until)
    if until_ <= t then end_session(s, 'expired', nil, until_) end
  elseif st == 'active' then
    local lease = str_num(s.lease_until)
    if lease <= t then
      end_session(s, 'lease_lost', nil, lease)
    else
      bill_upto(s, t)
    end
  elseif st == 'terminating' then
    local lease, deadline = str_num(s.lease_until), str_num(s.deadline)
    if lease < deadline and lease <= t then
      end_session(s, 'lease_lost', nil, lease)
    elseif deadline <= t then
      end_session(s, s.reason, s.by, deadline)
    end
  end
end


local function first_due()
  local f = redis.call('ZRANGE', K_DUE, 0, 0, 'WITHSCORES')
  if #f == 0 then return nil end
  return tonumber(f[2])
end

-- call_list runs cmd on key with the list's items as its arguments, in
-- chunks (unpack has a limit on how many values it spreads).
local function call_list(cmd, key, list)
  local n = #list
  local i = 1
  while i <= n do
    local j = math.min(i + 999, n)
    redis.call(cmd, key, unpack(list, i, j))
    i = j + 1
  end
end


-- flush writes back everything the script changed and re-files the timers
-- of the sessions it touched: one command per key, whatever the number of
-- sessions.
local function flush()
  local sflat, zadd, zrem = {}, {}, {}
  FILED_MIN = nil
  for sid in pairs(SDIRTY) do
    local s = S[sid]
    if s then
      local js = cjson.encode(s)
      SESSJSON[s] = js
      sflat[#sflat + 1] = sid
      sflat[#sflat + 1] = js
      local d = due(s)
      if s.state == 'ended' then
        -- its only timer left is its removal: filed as "~id", so removing
        -- it needs no decoding
        zrem[#zrem + 1] = sid
        zadd[#zadd + 1] = num_str(d)
        zadd[#zadd + 1] = '~' .. sid
      elseif d then
        zadd[#zadd + 1] = num_str(d)
        zadd[#zadd + 1] = sid
      else
        zrem[#zrem + 1] = sid
      end
      if d and (FILED_MIN == nil or d < FILED_MIN) then FILED_MIN = d end
    end
  end
  SDIRTY = {}
  if FILED_MIN and (MIN_ADDED == nil or FILED_MIN < MIN_ADDED) then MIN_ADDED = FILED_MIN end
  call_list('HSET', K_SESS, sflat)
  call_list('ZREM', K_DUE, zrem)
  call_list('ZADD', K_DUE, zadd)
  -- the seats and the users' seat sets share a hash: one HSET, one HDEL
  local set, del = {}, {}
  for key in pairs(SEATDIRTY) do
    local st = SEATS[key]
    if st then
      set[#set + 1] = key
      set[#set + 1] = cjson.encode(st)
    else
      del[#del + 1] = key
    end
  end
  SEATDIRTY = {}
  for uid in pairs(USEATDIRTY) do
    if next(USEATS[uid]) == nil then
      del[#del + 1] = '@' .. uid
    else
      set[#set + 1] = '@' .. uid
      set[#set + 1] = cjson.encode(USEATS[uid])
    end
  end
  USEATDIRTY = {}
  call_list('HSET', K_SEATS, set)
  call_list('HDEL', K_SEATS, del)
  if A then
    local flat = {}
    for f in pairs(A._dirty) do
      local v = A[f]
      if type(v) == 'number' then v = num_str(v) end
      flat[#flat + 1] = f
      flat[#flat + 1] = v
    end
    call_list('HSET', K_ACCT, flat)
    A._dirty = {}
  end
end

-- catch_up fires, in time order, the timers that fell due by now, so every
-- operation acts on the account as it is at this instant, whichever node
-- reaped last. It stops after limit steps; the reaper does the rest. It
-- looks at the first timer alone (most scripts find nothing due), then
-- reads what is due a chunk at a time; a step that files a timer before
-- now makes it read again, so order holds.
local CHUNK = 32

local function catch_up(now, limit)
  local first = redis.call('ZRANGE', K_DUE, 0, 0, 'WITHSCORES')
  if not DUE_SEEN then
    -- the first look serves as DUE_BEFORE too
    DUE_SEEN = true
    if #first > 0 then DUE_BEFORE = tonumber(first[2]) end
  end
  -- strictly before now: what falls due at this very instant belongs to
  -- the caller (a close at the instant a PPU minute starts does not start
  -- that minute)
  if #first == 0 or tonumber(first[2]) >= now then return 0 end
  local before = '(' .. num_str(now)
  local n = 0
  local gone, zrem = {}, {} -- retention ran out: session ids, due members
  while n < limit do
    local items = redis.call('ZRANGEBYSCORE', K_DUE, '-inf', before, 'WITHSCORES', 'LIMIT', 0, math.min(CHUNK, limit - n))
    if #items == 0 then break end
    local again = false
    for i = 1, #items, 2 do
      local sid, t = items[i], tonumber(items[i + 1])
      if string.byte(sid, 1) == 126 then -- "~id": an ended session's retention ran out
        local id = string.sub(sid, 2)
        gone[#gone + 1] = id
        zrem[#zrem + 1] = sid
        S[id] = false
      else
        local s = sess(sid)
        if not s then
          zrem[#zrem + 1] = sid
        else
          step(s, t)
          flush()
          -- a timer filed before now must take its turn among the rest
          again = FILED_MIN ~= nil and FILED_MIN < now
        end
      end
      n = n + 1
      if again then break end
    end
    call_list('HDEL', K_SESS, gone)
    call_list('ZREM', K_DUE, zrem)
    gone, zrem = {}, {}
    if not again and #items < 2 * CHUNK then break end
  end
  return n
end

-- start is the first call of every operation that needs the account: it
-- loads it and, the first time in a script, catches up. It returns the
-- current time, or nil when the account does not exist.

local function start()
  if not acct() then return nil end
  local now = now_ms()
  if not CAUGHT_UP then
    CAUGHT_UP = true
    catch_up(now, CFG.catchup or 100)
  end
  return now
end

-- own_sessions lists the seat-holding sessions of a user: what it may end
-- to make room.
local function own_sessions(uid)
  local out = {}
  for key in pairs(useats(uid)) do
    local st = seat(key)
    if st then
      for sid in pairs(st.sids) do
        local s = sess(sid)
        if s then out[#out + 1] = s end
      end
    end
  end
  return out
end
