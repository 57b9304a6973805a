-- lib.lua: the state of a call of the account code, and its records. The
-- account code is this file, rules.lua (the seat rules, PPU billing and the
-- session transitions), timers.lua (timers, write-back and catch-up), then
-- one file per operation (open.lua, end.lua, ...; each defines
-- OPS['<name>']), then main.lua, which runs a batch of operations of one
-- account in order and writes back once: several callers' operations of
-- one account share one script call (the batcher in batch.go groups what
-- is in flight), and each is still atomic. The files are one chunk: a
-- local of an earlier file is seen by the later ones.
--
-- The account script takes these KEYS, all under the account's hash tag:
--   KEYS[1]  acct    hash  settings and counters of the account
--   KEYS[2]  users   hash  user id -> user JSON
--   KEYS[3]  sess    hash  session id -> session JSON
--   KEYS[4]  seats   hash  seat key -> seat string "P|U <user> <sid>...",
--                          and "@" user id -> the seat keys the user holds,
--                          separated by newlines, and "~" user id -> the
--                          user's paused sessions, separated by spaces (see
--                          seat below; a seat key never starts with "@" or
--                          "~": it starts with a user or session id). One hash, not two: a hash whose
--                          values are all under 64 bytes stays a listpack,
--                          where every lookup is a scan, up to 512 fields;
--                          a seat string (two UUIDs) is 75 bytes, so this
--                          hash is a real hash table from its first seat on.
--   KEYS[5]  ppuq    zset  seat keys running on PPU, scored by when they began waiting
--   KEYS[6]  due     zset  session id -> when its next timer fires (ms, Redis clock);
--                          and RET_MARK (timers.lua), due when the head of ret is
--   KEYS[7]  ledger  list  PPU ledger entries (JSON), oldest first
--   KEYS[8]  billed  hash  idempotency key ("sid:minute" or a top-up key) -> ledger index
--   KEYS[9]  channel       the account's pub/sub channel (in KEYS for its hash tag)
--   KEYS[10] names   hash  lower-cased user name -> user id (names are unique)
--   KEYS[11] ret     list  "<ms> <session id>": an ended session and when its
--                          retention runs out, in the order they ended (see
--                          catch_up)
-- ARGV[1] is the broker's defaults, numbers separated by spaces (a string
-- match is cheaper than JSON, and it is read on every call):
--   "lease standby paused notice minute retention catchup retain_max warn,warn,..."
--   (retain_max: the most ended sessions an account keeps; see flush)
--   (durations in ms; the low-balance warnings in minutes, maybe none)
-- ARGV[2] is the number of operations, then each operation as its name
-- and its arguments, as many as it takes (ARITY, made from scripts.go's
-- accountOps): "open" sid uid ...
--
-- The reply is {next due, status 1, payload 1, status 2, payload 2, ...}:
-- next due is the account's earliest timer when it moved earlier during
-- this script, else ""; per operation, status is one of the ST_ constants
-- (mirrored in status.go) and payload a JSON string. Each operation's
-- function takes its arguments as Lua arguments (no table per operation)
-- and returns its status and payload table; a payload that is a session
-- goes out as the JSON write-back made of it, not encoded again. Payloads
-- and events show sessions as they are when the script ends (the batch
-- commits as one).

-- The same code runs as a Redis function (FCALL; library built once, see
-- scripts.go) or as a script (EVALSHA; Redis before 7, and miniredis).
-- Either way the state of a call is set anew by reset. As a function, a
-- few things outlive a call, none of them a truth of its own: MIRRORS
-- (what the account's hashes store, valid while the account's stamp says
-- so), DECODED (decoded records keyed by their stored text), the
-- number<->string conversions (NUMSTR/STRNUM) and the lists write-back
-- builds its commands in. Hot paths (open, close, write-back) set fields
-- and tables inline rather than through the small helpers below: a Lua
-- function call costs Redis ~250 instructions, a bytecode ~50.

-- the call's state, set by reset
local K_ACCT, K_USERS, K_SESS, K_SEATS
local K_PPUQ, K_DUE, K_LEDGER, K_BILLED, K_CHANNEL, K_NAMES, K_RET
local CFG, CFG_SRC -- the broker's defaults, and the string they came from
local LATE        -- functions run after the last write-back (see reap.lua)
local NOW_US      -- the call's instant: one TIME call serves it all
local NOW_MS      -- the same in ms, once now_ms has made it
local A           -- the account hash, loaded once per call
local EV, EV_N = {}, 0 -- sessions to publish, each once (see emit_session):
-- a list kept from call to call, like WRITTEN (past EV_N it is stale)
local EVO         -- the other events to publish (see emit)
local BALANCE_EV  -- a "balance" event is in EVO (billing: one a call)
-- EMITTED, SESSJSON, SDIRTY and SEATDIRTY are sets of one call, kept from
-- call to call and left empty by the call (flush takes what it writes out
-- of SDIRTY and SEATDIRTY, main empties the other two at its end): a table
-- made anew for each call grows, and rehashes, at every power of two on
-- the way to the call's ~20-40 entries, while one that was emptied keeps
-- its size. A call that failed half way may leave entries: the next makes
-- all four anew (CLEAN).
local EMITTED = {} -- session table -> true once a session event carries it
local SESSJSON = {} -- session table -> its JSON, as the last flush wrote it
local CLEAN = true -- the last call ended well: the four sets are empty
local WRITTEN, WRITTEN_N = {}, 0 -- the sessions flush wrote (a list kept
-- from call to call: past WRITTEN_N it is stale), and how many
local S           -- session cache: sid -> session table (false when absent)
local SDIRTY = {} -- sid -> true when the session must be written back
local SEATDIRTY = {} -- the seats hash's fields this call changed (in MT: see seat)
local EXHAUSTING  -- true while exhaust runs: nothing is billed then
local DUE_BEFORE  -- the account's first timer before this call
local MIN_ADDED   -- the earliest timer this call filed
local FILED_MIN   -- the earliest timer the last flush filed
local RET_FILED   -- this call filed RET_MARK, at an entry's time or parked
-- (timers.lua, PARKED: write-back need not park it again)
local DUE_SEEN    -- catch_up has looked at the first timer
local CAUGHT_UP   -- catch_up ran
local TRIMMED     -- ended sessions this call removed past retain_max (trim_retained)
local LAGGING     -- catch_up stopped at its limit: timers that fell due
-- before now may be left (see overdue, timers.lua)
local DUR         -- duration name -> ms, for this call
local byte, find, sub, gmatch -- string's functions, set by reset (a Redis
-- function's library code sees no globals while it loads); and the
-- globals hot code calls, as locals (a global is two lookups a use)
local rcall, jencode, unpack_
local M           -- the account's mirror, once acct() found it valid (see MIRRORS)
local M_OLD       -- the account's mirror as reset took it out, until acct()
local MWROTE      -- this call wrote to a hash the mirror covers
local STAMP       -- the stamp this call writes, once it has one
local MS, MT, MU  -- the call's mirror of the sessions, seats and users hashes:
-- field -> stored value, false when absent, nil when unknown; a read that
-- misses adds a field and counts it in MIRROR_N (see MIRRORS)

-- ---------------------------------------------------------------- mirror

-- MIRRORS keeps, per account (by its acct key), what this Lua VM last read
-- or wrote of the account's sessions, seats and users hashes, so a call
-- reads them from Redis only when it does not know them yet. As a Redis
-- function the library's locals outlive a call (as a script they do not,
-- and every call starts with none). A mirror holds field -> the stored
-- value, or false for a field known to be absent; a field it does not hold
-- is read with HGET. It is only ever what Redis stores, because:
--
-- - every write of the account code to those hashes goes through it
--   (flush, catch-up's removals, the user writes);
-- - reset takes the account's mirror out for the call, and main puts it
--   back only when the call ends without an error: a call that fails half
--   way (a Lua error keeps the writes before it) leaves none behind;
-- - a call that writes to those hashes stores a new `stamp` in the account
--   hash, unique to this VM and call, and the mirror remembers the stamp it
--   matches; the next call uses it only if the account hash (read by every
--   call) still holds that stamp. Another Redis's account code (after a
--   failover, a cluster slot that moved and came back) writes stamps of its
--   own, and so does this one on every change: a mirror whose stamp is not
--   the stored one is dropped. A writer outside the account code must HDEL
--   the account's `stamp` (docs/design.md); a restore or a restart starts
--   with no mirror.
--
-- Lua's memory is not under maxmemory: at most MIRROR_MAX fields are added
-- before every mirror starts again empty. Ended sessions are not kept.
local MIRRORS, MIRROR_N = {}, 0
local MIRROR_MAX = 8192
local VM_ID        -- this VM's part of a stamp: made on its first call
local STAMP_N = 0  -- stamps this VM has made

local function mirror_take()
  M_OLD = MIRRORS[K_ACCT]
  if M_OLD then MIRRORS[K_ACCT] = nil end
  M, MWROTE, STAMP = nil, false, nil
  MS, MT, MU = {}, {}, {}
end

-- mirror_use picks the call's mirror once the account hash is read: the
-- one taken out if the stored stamp is the one it matches (and this call
-- has written nothing yet), else the call's new one.
local function mirror_use(stamp)
  if M_OLD and stamp and M_OLD.stamp == stamp and not MWROTE then
    M = M_OLD
    MS, MT, MU = M.sess, M.seats, M.users
  else
    M = {sess = MS, seats = MT, users = MU}
  end
  M_OLD = nil
end

-- new_stamp returns the stamp this call writes (see MIRRORS).
local function new_stamp()
  if not STAMP then
    if not VM_ID then
      local t = rcall('TIME')
      VM_ID = t[1] .. '.' .. t[2] .. '.' .. sub(tostring(MIRRORS), 8)
    end
    STAMP_N = STAMP_N + 1
    STAMP = string.format('%s:%d', VM_ID, STAMP_N) -- (%d: a number in a
    -- concatenation is formatted with %.14g, several times the cost)
  end
  return STAMP
end

-- mirror_keep puts the call's mirror back when the call ends well (every
-- mirror starts again empty once MIRROR_MAX fields were added).
local function mirror_keep()
  if MIRROR_N > MIRROR_MAX then
    MIRRORS, MIRROR_N = {}, 0
  elseif M and A and A.stamp then
    M.stamp = A.stamp
    M.acct = A
    MIRRORS[K_ACCT] = M
  end
end

local function reset(keys, argv)
  if not rcall then
    byte, find, sub, gmatch = string.byte, string.find, string.sub, string.gmatch
    rcall, jencode, unpack_ = redis.call, cjson.encode, unpack
  end
  K_ACCT, K_USERS, K_SESS, K_SEATS = keys[1], keys[2], keys[3], keys[4]
  K_PPUQ, K_DUE, K_LEDGER, K_BILLED, K_CHANNEL = keys[5], keys[6], keys[7], keys[8], keys[9]
  K_NAMES, K_RET = keys[10], keys[11]
  if argv[1] ~= CFG_SRC then
    -- parsed again only when the defaults change: as a function, the
    -- last call's CFG is still here (it depends on argv[1] alone)
    CFG = {}
    local l, sb, p, n, m, r, c, k, w = string.match(argv[1], '^(%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) ?([%d,]*)$')
    CFG.lease, CFG.standby, CFG.paused, CFG.notice = tonumber(l), tonumber(sb), tonumber(p), tonumber(n)
    CFG.minute, CFG.retention, CFG.catchup = tonumber(m), tonumber(r), tonumber(c)
    CFG.retain_max = tonumber(k)
    CFG.warn = {}
    for x in string.gmatch(w or '', '%d+') do CFG.warn[#CFG.warn + 1] = tonumber(x) end
    CFG_SRC = argv[1]
  end
  LATE, NOW_US, NOW_MS, A = {}, nil, nil, nil
  EV_N, EVO, BALANCE_EV = 0, {}, false
  if not CLEAN then EMITTED, SESSJSON, SDIRTY, SEATDIRTY = {}, {}, {}, {} end
  CLEAN = false
  WRITTEN_N = 0
  S = {}
  EXHAUSTING, DUE_BEFORE, MIN_ADDED, FILED_MIN, DUE_SEEN, CAUGHT_UP = false, nil, nil, nil, false, false
  RET_FILED = false
  LAGGING, TRIMMED = false, 0
  DUR = {}
  mirror_take()
end

local ST_OK, ST_NOT_FOUND, ST_FORBIDDEN, ST_USER_BLOCKED = 0, 1, 2, 3
local ST_USER_LIMIT, ST_ACCOUNT_LIMIT, ST_PPU_EXHAUSTED = 4, 5, 6
local ST_BAD_STATE, ST_STALE, ST_EXISTS, ST_INVALID = 7, 8, 9, 10

local OPS = {}  -- operation name -> function(arguments...): status, payload

local function now_us()
  if not NOW_US then
    local t = rcall('TIME')
    NOW_US = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return NOW_US
end

local function now_ms()
  if not NOW_MS then NOW_MS = math.floor(now_us() / 1000) end
  return NOW_MS
end

-- Numbers and strings. Formatting a number the way Lua and cjson do
-- (printf "%.14g", or "%.17g" for a redis.call argument) costs more than
-- anything else a script does with it, and parsing one (strtod) not much
-- less. So a session keeps its times and counters as decimal strings, in
-- the table and in its JSON ("created":"1764...": SessionRec reads them
-- with ",string"): a session is decoded and encoded with no number in
-- it. Code that computes with a field reads it with str_num and writes it
-- with num_str; both remember what they converted (most values of a call
-- are the same few: now, now + lease), in NUMSTR and STRNUM, which outlive
-- the call (a number's string never changes) until NUMS_MAX conversions
-- fill them. The values that repeat are those of the last few ms, so a
-- few hundred suffice; what they hold is live memory that every garbage
-- collection of the functions VM marks, and Redis starts one every 50
-- calls: with 4,096 a call of one operation cost ~6K instructions more.
local NUMSTR, STRNUM, NUMS_N = {}, {}, 0 -- number -> string, string -> number
local NUMS_MAX = 256

local function num_str(n)
  local s = NUMSTR[n]
  if not s then
    s = string.format('%d', n)
    if NUMS_N >= NUMS_MAX then NUMSTR, STRNUM, NUMS_N = {}, {}, 0 end
    NUMSTR[n] = s
    STRNUM[s] = n
    NUMS_N = NUMS_N + 1
  end
  return s
end

-- str_num returns the number of a decimal string, or nil for nil.
local function str_num(s)
  if s == nil then return nil end
  local n = STRNUM[s]
  if not n then
    n = tonumber(s)
    if NUMS_N >= NUMS_MAX then NUMSTR, STRNUM, NUMS_N = {}, {}, 0 end
    STRNUM[s] = n
    NUMS_N = NUMS_N + 1
  end
  return n
end

-- ---------------------------------------------------------------- account

-- acct_counters makes the account's counters numbers in A (absent: 0);
-- they stay numbers until flush writes them back, and code reads A.used,
-- A.seats, A.ppu_sess, A.balance and A.fence directly.
local function acct_counters()
  A.used, A.seats = tonumber(A.used) or 0, tonumber(A.seats) or 0
  A.ppu_sess, A.balance, A.fence = tonumber(A.ppu_sess) or 0, tonumber(A.balance) or 0, tonumber(A.fence) or 0
end

-- acct loads the account hash into A, once per call: from the mirror
-- when the stored stamp is the mirror's (one HGET of the stamp; the mirror
-- keeps A as the last call left it, written back whole: see MIRRORS), else
-- with HGETALL.
local function acct()
  if A == nil then
    local m = M_OLD
    if m and m.acct then
      local stamp = rcall('HGET', K_ACCT, 'stamp')
      if stamp and stamp == m.stamp then
        A = m.acct
        mirror_use(stamp)
        return A
      end
    end
    local flat = rcall('HGETALL', K_ACCT)
    if #flat == 0 then return nil end
    A = {}
    for i = 1, #flat, 2 do A[flat[i]] = flat[i + 1] end
    A._dirty = {}
    MIRROR_N = MIRROR_N + #flat / 2
    acct_counters()
    mirror_use(A.stamp)
  end
  return A
end

-- aset sets a field of the account to a string or a number.
local function aset(field, value)
  A[field] = value
  A._dirty[field] = true
end

-- aadd adds delta to a counter of the account.
local function aadd(field, delta)
  aset(field, A[field] + delta)
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
  local f = A.fence + 1
  local t = NOW_US or now_us()
  if t > f then f = t end
  A.fence = f
  A._dirty.fence = true
  -- (not num_str: every grant's token is new, and remembering each would
  -- push the conversions that repeat out of NUMSTR every NUMS_MAX grants)
  return string.format('%d', f)
end

-- ---------------------------------------------------------------- events


-- emit queues an event (not a session's) for the account's channel.
local function emit(ev)
  EVO[#EVO + 1] = ev
end

-- emit_session queues the event that session s changed: the session
-- table itself, once, so the message shows its state at the end of the
-- script.
local function emit_session(s)
  if EMITTED[s] then return end
  EMITTED[s] = true
  EV_N = EV_N + 1
  EV[EV_N] = s
end

-- Payloads and events are encoded by cjson.encode, whole: it builds the
-- text in one C buffer and makes one Lua string of it. Splicing each
-- session's JSON from write-back into a list of pieces and joining them
-- costs more (table.concat makes and hashes intermediate strings: Redis's
-- Lua hashes every string it makes, whole).

-- ---------------------------------------------------------------- decoded records

-- DECODED maps a record's stored JSON to its decoded table, across calls:
-- as a Redis function the library's locals outlive a call (as a script
-- they do not, and DECODED starts empty every time). A table is keyed by
-- the very text it was decoded from, or that write-back encoded it to, so
-- whatever a call finds there is what cjson.decode of the stored value
-- would make; the stored value (read, or known from the mirror: MIRRORS)
-- stays the truth. A
-- session is taken out of DECODED when a call uses it and put back under
-- its new JSON when the call ends (main.lua), so a call that fails half
-- way leaves nothing stale behind. At most DECODED_MAX entries are added
-- before it starts again empty (Lua's memory is not under maxmemory).
local DECODED, DECODED_N = {}, 0
local DECODED_MAX = 1024

local function decoded_put(js, t)
  if DECODED_N >= DECODED_MAX then DECODED, DECODED_N = {}, 0 end
  DECODED[js] = t
  DECODED_N = DECODED_N + 1
end

-- ---------------------------------------------------------------- users

-- user returns the user record of uid, or nil. It may be shared with
-- later calls (see DECODED): a caller that changes a user changes a copy.
local function user(uid)
  local r = MU[uid]
  if r == nil then
    r = rcall('HGET', K_USERS, uid) or false
    MU[uid] = r
    MIRROR_N = MIRROR_N + 1
  end
  if not r then return nil end
  local u = DECODED[r]
  if not u then
    u = cjson.decode(r)
    decoded_put(r, u)
  end
  return u
end


-- ---------------------------------------------------------------- sessions


local function sess(sid)
  local s = S[sid]
  if s == nil then
    local r = MS[sid]
    if r == nil then
      r = rcall('HGET', K_SESS, sid) or false
      MS[sid] = r
      MIRROR_N = MIRROR_N + 1
    end
    if r then
      s = DECODED[r]
      if s then
        DECODED[r] = nil -- taken out: this call may change it
      else
        s = cjson.decode(r)
      end
    else
      s = false
    end
    S[sid] = s
  end
  return s or nil
end

local function touch(s)
  S[s.id] = s
  SDIRTY[s.id] = true
end

-- ---------------------------------------------------------------- seats

-- A seat is stored as one string: its kind ("P" prepaid, "U" PPU), its
-- user and the ids of the sessions that hold it, separated by spaces:
-- "P <user id> <session id> <session id>...". User and session ids are
-- UUIDs, with no spaces. A user's seat set ("@<user id>") is its seat keys
-- separated by newlines (a seat key has no control characters: device ids
-- are checked). Strings, not JSON: the common seat change - a session
-- takes or leaves a seat of its own - is then a concatenation or a string
-- compare, not a decode, two tables and an encode.

-- The call reads and changes the seats hash in its mirror, MT, itself: a
-- changed field is listed in SEATDIRTY, and write-back stores it. A call
-- that fails half way leaves no mirror behind (MIRRORS), so MT never
-- outlives a call with a change Redis does not have.

-- seat returns the seat string of key, or nil.
local function seat(key)
  local v = MT[key]
  if v == nil then
    v = rcall('HGET', K_SEATS, key) or false
    MT[key] = v
    MIRROR_N = MIRROR_N + 1
  end
  return v or nil
end

-- seat_put sets the seat string of key (nil: the seat is free); key was
-- read first (seat).
local function seat_put(key, v)
  MT[key] = v or false
  SEATDIRTY[key] = true
end

-- seat_first returns where the session ids of a seat string start (after
-- "P <user id> ").
local function seat_first(v)
  return find(v, ' ', 3, true) + 1
end

-- seat_user returns the user id of a seat string.
local function seat_user(v)
  return sub(v, 3, seat_first(v) - 2)
end

-- seat_sids returns the session ids of a seat string, as a list.
local function seat_sids(v)
  local out = {}
  for sid in gmatch(sub(v, seat_first(v)), '[^ ]+') do out[#out + 1] = sid end
  return out
end

-- list_find returns where item starts in list (items separated by the
-- byte sep, e.g. 32 for a space), searching from position from, or nil.
local function list_find(list, item, sep, from)
  local n, p = #item, from - 1
  repeat
    p = find(list, item, p + 1, true)
    if not p then return nil end
  until (p == from or byte(list, p - 1) == sep) and (p + n - 1 == #list or byte(list, p + n) == sep)
  return p
end

-- list_drop returns list without item, searching from position from;
-- list itself when item is not in it, and "" when item was all it held
-- after from.
local function list_drop(list, item, sep, from)
  local n, p = #item, list_find(list, item, sep, from)
  if not p then return list end
  if p == from then
    if p + n - 1 == #list then return '' end
    return sub(list, 1, p - 1) .. sub(list, p + n + 1) -- "item<sep>" goes
  end
  return sub(list, 1, p - 2) .. sub(list, p + n) -- "<sep>item" goes
end

-- seat_has says whether seat string v lists session sid.
local function seat_has(v, sid)
  return list_find(v, sid, 32, seat_first(v)) ~= nil
end

-- seat_drop returns seat string v without session sid, or nil when sid was
-- its last session.
local function seat_drop(v, sid)
  local from = find(v, ' ', 3, true) + 1 -- (seat_first, inline: on every close)
  -- (commonest: sid is the seat's only session)
  -- (find compares in place: sub would make the id again, hashed whole)
  if #v - from + 1 == #sid and find(v, sid, from, true) == from then return nil end
  local rest = list_drop(v, sid, 32, from)
  if #rest < from then return nil end -- no session left
  return rest
end

-- ATKEY remembers each user's seat-set field ("@" .. user id) across
-- calls, as NUMSTR does numbers: a concatenation makes a new string and
-- hashes it whole every time. It starts again empty once ATKEY_MAX users
-- filled it.
local ATKEY, ATKEY_N = {}, 0
local ATKEY_MAX = 4096

local function at_key(uid)
  local f = '@' .. uid
  if ATKEY_N >= ATKEY_MAX then ATKEY, ATKEY_N = {}, 0 end
  ATKEY[uid] = f
  ATKEY_N = ATKEY_N + 1
  return f
end

-- useats returns the seat set of a user: its seat keys separated by
-- newlines, "" for none; and its field in the seats hash. A change sets
-- MT[field] to the new set ("" for none) and lists the field in SEATDIRTY.
local function useats(uid)
  local f = ATKEY[uid] or at_key(uid)
  local v = MT[f]
  if v == nil then
    v = rcall('HGET', K_SEATS, f) or false
    MT[f] = v
    MIRROR_N = MIRROR_N + 1
  end
  return v or '', f
end

local function useats_count(v)
  if v == '' then return 0 end
  local n = 1
  for _ in gmatch(v, '\n') do n = n + 1 end
  return n
end

local function useats_add(v, key)
  if v == '' then return key end
  return v .. '\n' .. key
end

local function useats_drop(v, key)
  if v == key then return '' end
  return list_drop(v, key, 10, 1)
end

-- A user's paused sessions ("~" .. user id in the seats hash): their ids
-- separated by spaces. Paused sessions hold no seat, so the seat set does
-- not name them; blocking finds them here instead of reading every
-- session of the account, and pause counts them (MAX_PAUSED, rules.lua).
-- A change sets MT[field] ("" for none) and lists it in SEATDIRTY.
local function upaused(uid)
  local f = '~' .. uid
  local v = MT[f]
  if v == nil then
    v = rcall('HGET', K_SEATS, f) or false
    MT[f] = v
    MIRROR_N = MIRROR_N + 1
  end
  return v or '', f
end

local function upaused_add(uid, sid)
  local v, f = upaused(uid)
  MT[f] = v == '' and sid or v .. ' ' .. sid
  SEATDIRTY[f] = true
end

local function upaused_drop(uid, sid)
  local v, f = upaused(uid)
  local rest = list_drop(v, sid, 32, 1)
  if rest ~= v then
    MT[f] = rest
    SEATDIRTY[f] = true
  end
end

-- SEATKEY remembers the seat keys of the default counting mode ("<user
-- id>|<device id>", by user id, then by device id) across calls, as ATKEY
-- does: an open and a close of a session make the same key, a new string
-- hashed whole each time. It starts again empty once SEATKEY_MAX keys
-- filled it.
local SEATKEY, SEATKEY_N = {}, 0
local SEATKEY_MAX = 4096

local function seat_key(s)
  local mode = A.mode or 'user_device'
  if mode == 'user' then return s.user end
  if mode == 'session' then return s.id end
  local uid, device = s.user, s.device
  local byd = SEATKEY[uid]
  local k = byd and byd[device]
  if k then return k end
  k = uid .. '|' .. device
  if SEATKEY_N >= SEATKEY_MAX then SEATKEY, SEATKEY_N, byd = {}, 0, nil end
  if not byd then
    byd = {}
    SEATKEY[uid] = byd
  end
  byd[device] = k
  SEATKEY_N = SEATKEY_N + 1
  return k
end
