-- rules.lua: the seat rules, PPU billing and the session transitions
-- (part of the account code; lib.lua gives the shape).

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
  local n = rcall('RPUSH', K_LEDGER, jencode(entry))
  rcall('HSET', K_BILLED, idem, n - 1)
end


local terminate -- defined below; exhaustion ends sessions

-- exhaust gives every PPU session the ending notice: the balance is 0.
local function exhaust(t)
  if EXHAUSTING then return end
  EXHAUSTING = true
  local keys = rcall('ZRANGE', K_PPUQ, 0, -1)
  for _, key in ipairs(keys) do
    local v = seat(key)
    if v then
      for _, sid in ipairs(seat_sids(v)) do
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
    local bal = A.balance
    if bal <= 0 then
      exhaust(nb)
      return
    end
    local minute = (str_num(s.billed) or 0) + 1
    local idem = s.id .. ':' .. num_str(minute)
    if rcall('HEXISTS', K_BILLED, idem) == 0 then
      aset('balance', bal - 1)
      ledger_add({kind = 'minute', session = s.id, user = s.user, minute = minute,
        delta = -1, balance = bal - 1, at = nb}, idem)
      warn_crossed(bal, bal - 1)
      -- the balance changed with no other event: pages show it
      if not BALANCE_EV then
        BALANCE_EV = true
        emit({type = 'balance'})
      end
    end
    s.billed = num_str(minute)
    touch(s)
    if bal - 1 <= 0 then exhaust(nb) end
  end
end

-- not_before returns t, or a later time when s already went past t: a
-- timer that fires late (catch-up behind, and an operation fired the
-- session's own later timers first, or an earlier one of this call changed
-- it) changes a session no earlier than its last change, and ends its PPU
-- stretch no earlier than just after the start of a minute billed in it,
-- so its record never runs backwards and every billed minute started in
-- its PPU time. Callers use it only for a t before now.
local function not_before(s, t)
  local a = str_num(s.at)
  if a and a > t then t = a end
  if s.ppu_at then
    local last = next_bill(s) - CFG.minute -- the last billed minute's start
    if last > t then t = last + 1 end
  end
  return t
end

-- settle ends a PPU stretch at t: minutes that started before t are billed
-- (a minute starting at the very instant the stretch ends is not), and the
-- active time is added up. Billing may exhaust the account on the way.
local function settle(s, t)
  bill_upto(s, t - 1)
  stop_stretch(s, t)
end

-- before_ppu_grant (timers.lua) bills the PPU minutes that started before
-- a grant, before the grant looks at the balance, when they could use it up.
local before_ppu_grant

-- ---------------------------------------------------------------- seat moves

-- attach gives s the seat of key, whose new seat string v lists s.
local function attach(s, key, v)
  MT[key] = v
  SEATDIRTY[key] = true
  if byte(v, 1) == 85 then -- "U": PPU
    s.kind = 'ppu'
    aadd('ppu_sess', 1)
  else
    s.kind = 'prepaid'
  end
  S[s.id] = s
  SDIRTY[s.id] = true
end

-- promote moves the longest-waiting PPU keys onto free prepaid seats.
local function promote(t)
  -- no PPU session means no PPU key waits (ppu_sess counts them)
  if A.promote == '0' or A.ppu_sess <= 0 then return end
  while A.used < A.seats do
    local first = rcall('ZRANGE', K_PPUQ, 0, 0)
    if #first == 0 then return end
    local key = first[1]
    rcall('ZREM', K_PPUQ, key)
    local v = seat(key)
    if v then
      for _, sid in ipairs(seat_sids(v)) do
        local s = sess(sid)
        if s then
          local pt = t
          if pt < (NOW_MS or now_ms()) then pt = not_before(s, pt) end
          settle(s, pt)
          -- settling bills minutes, which can run the balance out and
          -- end the session (it has left the seat then)
          if s.state ~= 'ended' then
            s.kind = 'prepaid'
            s.promoted = num_str(pt)
            s.at = s.promoted
            aadd('ppu_sess', -1)
            touch(s)
            emit_session(s)
          end
        end
      end
      v = seat(key)
      if v then
        seat_put(key, 'P' .. sub(v, 2))
        aadd('used', 1)
        emit({type = 'promoted', seat = key, user_id = seat_user(v)})
      end
    end
  end
end

-- detach frees the seat of s, which holds one: its key is seat_key(s)
-- (the counting mode does not change while a seat is held). It leaves s
-- itself as it is; the caller changes its state next.
local function detach(s, t)
  local key = seat_key(s)
  local v = seat(key)
  if not v then return end
  local ppu = byte(v, 1) == 85 -- "U"
  if ppu then aadd('ppu_sess', -1) end
  local rest = seat_drop(v, s.id)
  MT[key] = rest or false
  SEATDIRTY[key] = true
  if rest == nil then
    -- the seat is free: every session of a seat is its user's
    local held, f = useats(s.user)
    MT[f] = held == key and '' or useats_drop(held, key) -- (the commonest case inline)
    SEATDIRTY[f] = true
    if ppu then
      rcall('ZREM', K_PPUQ, key)
    else
      A.used = A.used - 1
      A._dirty.used = true
      if A.ppu_sess > 0 then promote(t) end
    end
  end
end

-- acquire finds a seat for s by the seat rules, or returns the denial status.
-- A user may hold at most MAX_KEYS seat keys, and a seat be shared by at
-- most MAX_SHARE sessions: bounds against a user (or a stolen token)
-- opening sessions without end, which sharing and PPU would never refuse
-- (docs/design.md). Both refuse with user_limit: the user's own sessions
-- are in the way.
local MAX_KEYS, MAX_SHARE = 100, 100
-- MAX_PAUSED: the paused sessions a user may keep (a paused session holds
-- no seat, so the bounds above do not count it): pausing one more is
-- refused with user_limit (broker.MaxPausedSessions).
local MAX_PAUSED = 100

-- queue_score is the PPU queue's score of a key that begins waiting at t.
-- Keys that begin at one instant (one call, or two calls in one
-- millisecond) wait in the order they came, not in the order of their
-- names, which is how a sorted set orders equal scores: a key's score is
-- a little (1/1024 ms, exact in a double for these times) above the
-- last one's when that is not before t. Nothing reads the scores but for
-- their order (promotion, exhaustion, billing).
local function queue_score(t)
  local last = rcall('ZRANGE', K_PPUQ, -1, -1, 'WITHSCORES')[2]
  if last then
    local l = tonumber(last)
    if l >= t then return string.format('%.17g', l + 1 / 1024) end
  end
  return NUMSTR[t] or num_str(t)
end

local function acquire(s, u, t)
  if u.status ~= 'active' then return ST_USER_BLOCKED end
  local key = seat_key(s)
  local v = seat(key)
  -- a grant on PPU (a key on PPU, or a new key with no prepaid seat free)
  -- comes after the minutes that started before it, which may end
  -- sessions: the seat is read again. A prepaid grant takes no minute and
  -- skips it, since it may read every PPU session of the account. (The
  -- test inline: a function call costs more than it, on every grant.)
  if A.ppu_sess > 0 and (v and byte(v, 1) == 85 or not v and A.used >= A.seats) then
    before_ppu_grant(t)
    v = seat(key)
  end
  if v then
    -- a key on PPU takes new sessions only while PPU is on: turning it off
    -- stops new PPU spending; the sessions running go on (docs/design.md)
    if byte(v, 1) == 85 then
      if A.ppu ~= '1' and not seat_has(v, s.id) then return ST_ACCOUNT_LIMIT end
      if A.balance <= 0 then return ST_PPU_EXHAUSTED end
    end
    -- the seat lists its sessions' ids, each after a space: they are
    -- counted only when the list is long (the broker's ids are UUIDs, 37
    -- bytes with the space: from ~half of MAX_SHARE on), not on every
    -- shared open
    if #v > 18 * MAX_SHARE then
      local _, spaces = string.gsub(v, ' ', ' ')
      if spaces - 1 >= MAX_SHARE and not seat_has(v, s.id) then return ST_USER_LIMIT end
    end
    -- a session that takes a seat holds none, so it is not listed yet
    -- (seat_drop would leave a second listing behind: never add one)
    if not seat_has(v, s.id) then v = v .. ' ' .. s.id end
    attach(s, key, v)
    return ST_OK
  end
  local held, f = useats(u.id)
  local n = held == '' and 0 or useats_count(held) -- (the commonest case inline)
  if n >= MAX_KEYS or u.max_seats and n >= u.max_seats then return ST_USER_LIMIT end
  local kind
  if A.used < A.seats then
    kind = 'prepaid'
    A.used = A.used + 1
    A._dirty.used = true
  elseif A.ppu == '1' and A.balance > 0 then
    kind = 'ppu'
    rcall('ZADD', K_PPUQ, queue_score(t), key)
  elseif A.ppu == '1' then
    return ST_PPU_EXHAUSTED
  else
    return ST_ACCOUNT_LIMIT
  end
  MT[f] = held == '' and key or useats_add(held, key)
  SEATDIRTY[f] = true
  attach(s, key, (kind == 'ppu' and 'U ' or 'P ') .. u.id .. ' ' .. s.id) -- (a new seat string: see seat)
  return ST_OK
end

-- ---------------------------------------------------------------- transitions

local function end_session(s, reason, by, t)
  local st = s.state
  if st == 'ended' then return end
  if t < (NOW_MS or now_ms()) then t = not_before(s, t) end
  if st == 'active' and s.ppu_at then -- (settle has nothing to do without a PPU stretch)
    settle(s, t)
    st = s.state -- (billing may have begun the notice)
  end
  if st == 'standby' or st == 'active' or st == 'terminating' then
    detach(s, t)
  elseif st == 'paused' then
    upaused_drop(s.user, s.id)
  end
  s.state = 'ended'
  s.at = NUMSTR[t] or num_str(t)
  s.reason = reason
  if by then s.by = by end
  -- (a field is set to nil only when present: setting an absent one adds
  -- the key to the table, which then grows; see activate)
  if s.deadline then s.deadline = nil end
  local id = s.id
  S[id] = s
  SDIRTY[id] = true
  if not EMITTED[s] then
    EMITTED[s] = true
    EV_N = EV_N + 1
    EV[EV_N] = s
  end
end

terminate = function(s, reason, by, t)
  if t < (NOW_MS or now_ms()) then t = not_before(s, t) end
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
  local at = NUMSTR[t] or num_str(t)
  s.at = at
  local lease = t + (DUR.lease or dur('lease'))
  s.lease_until = NUMSTR[lease] or num_str(lease)
  s.activated = s.activated or at
  -- Lua 5.1 adds a key even to set it to nil: a new session would carry
  -- two dead keys, and its table outgrow its 16 slots at the close
  if s.standby_until then s.standby_until = nil end
  if s.paused_until then s.paused_until = nil end
  S[s.id] = s
  SDIRTY[s.id] = true
  if s.kind == 'ppu' then
    start_stretch(s, t)
    bill_upto(s, t)
  end
end

-- paused_count says how many sessions a user keeps paused.
local function paused_count(uid)
  local v = upaused(uid)
  if v == '' then return 0 end
  local _, spaces = string.gsub(v, ' ', ' ')
  return spaces + 1
end

-- own_sessions lists the seat-holding sessions of a user: what it may end
-- to make room.
local function own_sessions(uid)
  local out = {}
  for key in gmatch(useats(uid), '[^\n]+') do
    local v = seat(key)
    if v then
      for _, sid in ipairs(seat_sids(v)) do
        local s = sess(sid)
        if s then out[#out + 1] = s end
      end
    end
  end
  return out
end
