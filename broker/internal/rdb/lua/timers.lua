-- timers.lua: when each session's next timer fires, firing it, writing
-- back what a call changed, and catching up with what fell due (part of
-- the account code; lib.lua gives the shape).

-- PARKED is where RET_MARK (below) waits while the retention list is empty, so
-- that it stays in due, and due a skiplist, for good: with the timers of
-- live sessions alone (an account's first sessions, or sessions that run
-- all day and renew every heartbeat, with no close in the last retention
-- time) due was a listpack, and every ZADD of a renewal scanned it (~20K
-- instructions a renewal, a fifth of its cost). 2^53 - 1 ms, exact as a
-- double, is never reached: a first timer at PARKED or later is no timer
-- (first_due; reaper.go, parkedScore). Write-back parks RET_MARK when it
-- files timers in a due set that had none (flush), and retained_due
-- parks it when the list empties.
local PARKED = '9007199254740991'
local PARKED_MS = 9007199254740991

-- due returns when the next timer of s fires, or nil.
local function due(s)
  local st = s.state
  if st == 'standby' then return str_num(s.standby_until) end
  if st == 'paused' then return str_num(s.paused_until) end
  if st == 'active' then
    local nb, lease = next_bill(s), str_num(s.lease_until)
    -- a minute is billed 1 ms after it starts: whatever else happens at
    -- that very instant fires first (timers of one instant fire in no set
    -- order), so a promotion or an end at the instant a minute would start
    -- ends the stretch before it, as settle has it
    if nb and nb < lease then return nb + 1 end
    return lease
  end
  if st == 'terminating' then return math.min(str_num(s.deadline), str_num(s.lease_until)) end
  if st == 'ended' then return str_num(s.at) + CFG.retention end
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
      bill_upto(s, t - 1) -- the minutes that started before t (see due)
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

-- overdue brings s up to date: it fires, in time order, the timers of s
-- that fell due before now, as catch_up would have. An operation that
-- names a session calls it (when LAGGING) before it acts on the session,
-- so a heartbeat never renews a lease that has run out, a join never
-- activates an expired code, and so on; what is left is then acted on as
-- it is (an ended session answers as an ended one does). Only needed
-- when catch_up stopped at its limit: otherwise every timer due before now
-- has fired, because write-back files every live session's next timer.
-- It fires the session's own timers ahead of earlier ones of other
-- sessions that are still waiting; those fire at their own times when a
-- later catch-up (or the reaper) reaches them.
local function overdue(s, now)
  local t = due(s)
  while t and t < now and s.state ~= 'ended' do
    step(s, t)
    local nt = due(s)
    if nt == t then return end -- (a timer that changed nothing: never loop)
    t = nt
  end
end


-- first_due returns when the account's first timer fires, or nil. (Numbers
-- go to redis.call as strings: Redis formats a Lua number argument with
-- printf's %.17g. The score, the same text from call to call, is parsed
-- once: str_num.)
local function first_due()
  local f = rcall('ZRANGE', K_DUE, '0', '0', 'WITHSCORES')
  if #f == 0 then return nil end
  local t = str_num(f[2])
  if t >= PARKED_MS then return nil end -- (RET_MARK parked: no timer)
  return t
end

-- bill_started bills, in time order, the minutes of running PPU sessions
-- that started before t and are not billed yet (and ends those whose lease
-- ran out before t), so that a grant at t, which may take the last minute,
-- comes after them: if they take the last minute, the account ran out
-- then, and the grant is refused. Such minutes are left at t in two
-- cases: one that started at t - 1 (its timer fires at t, and what falls
-- due at t belongs to the caller), and any number while catch-up stopped
-- at its limit (LAGGING). A lease that runs out at t itself is left to the
-- caller, as in catch-up.
local function bill_started(t)
  -- a binary heap of the sessions that have such a timer, by when it fires
  -- (while catch-up is behind there may be many, each with many minutes)
  local hs, hk, n = {}, {}, 0
  local function push(s)
    if s.state ~= 'active' or not s.ppu_at then return end
    local d = due(s)
    if not (d < t or next_bill(s) < t) then return end
    n = n + 1
    local i = n
    while i > 1 do
      local p = math.floor(i / 2)
      if hk[p] <= d then break end
      hs[i], hk[i] = hs[p], hk[p]
      i = p
    end
    hs[i], hk[i] = s, d
  end
  local function pop()
    local s, d = hs[1], hk[1]
    local ls, lk = hs[n], hk[n]
    hs[n], hk[n] = nil, nil
    n = n - 1
    if n > 0 then
      local i = 1
      while true do
        local c = 2 * i
        if c > n then break end
        if c < n and hk[c + 1] < hk[c] then c = c + 1 end
        if lk <= hk[c] then break end
        hs[i], hk[i] = hs[c], hk[c]
        i = c
      end
      hs[i], hk[i] = ls, lk
    end
    return s, d
  end
  -- Such a session has its timer due by t (a minute is billed 1 ms after
  -- it starts: due(s) is next_bill(s) + 1 while before the lease). The
  -- timers index files due(s) for every session written back, so those
  -- are the index's members due by t (after catch-up, those due at t
  -- itself, or those it left while lagging) and the sessions this call
  -- changed and has not written back (SDIRTY): not every session on PPU.
  -- While catch-up is behind, the timers due by t are every kind of timer
  -- it left (leases, paused and standby times of a mass disconnect, each
  -- a session to read), and may be many more than the sessions on PPU:
  -- then it reads those instead, every session of a key on PPU, as it
  -- did before (the cheaper of the two; ZCOUNT costs a lookup).
  if LAGGING and rcall('ZCOUNT', K_DUE, '-inf', num_str(t)) > A.ppu_sess then
    for _, key in ipairs(rcall('ZRANGE', K_PPUQ, 0, -1)) do
      local v = seat(key)
      if v then
        for _, sid in ipairs(seat_sids(v)) do
          local s = sess(sid)
          if s then push(s) end
        end
      end
    end
  else
    local seen = {}
    for _, sid in ipairs(rcall('ZRANGEBYSCORE', K_DUE, '-inf', num_str(t))) do
      -- (not RET_MARK nor "~id": they start with "~")
      if byte(sid, 1) ~= 126 then
        local s = sess(sid)
        if s then
          seen[sid] = true
          push(s)
        end
      end
    end
    for sid in pairs(SDIRTY) do
      local s = S[sid]
      if s and not seen[sid] then push(s) end
    end
  end
  while n > 0 do
    local s, d = pop()
    -- (running out of minutes may have given it the notice meanwhile)
    if s.state == 'active' and s.ppu_at then
      local nb = next_bill(s)
      if d < t then
        step(s, d)
      else
        bill_upto(s, t - 1) -- a minute that started at t - 1, due at t
      end
      -- back in, unless nothing changed (never loop)
      if next_bill(s) ~= nb or due(s) ~= d then push(s) end
    end
  end
end

-- before_ppu_grant calls bill_started when the minutes it would bill could
-- use the balance up (the grant takes one more): each session on PPU has
-- at most one such minute, unless catch-up is behind, when each has at
-- most one per minute since the account's first timer, and one more.
-- Otherwise it costs a comparison (those minutes are billed by their
-- timers, in time order with everything else).
before_ppu_grant = function(t)
  local n = A.ppu_sess
  if n <= 0 then return end
  if LAGGING then
    local f = first_due()
    if f and f < t then n = n * (math.floor((t - f) / CFG.minute) + 2) end
  end
  if A.balance <= n + 1 then bill_started(t) end
end

-- call_list runs cmd on key with the list's items as its arguments, in
-- chunks (unpack has a limit on how many values it spreads).
local function call_list(cmd, key, list, n)
  n = n or #list
  local i = 1
  local r
  while i <= n do
    local j = math.min(i + 999, n)
    r = rcall(cmd, key, unpack_(list, i, j))
    i = j + 1
  end
  return r
end


-- flush writes back everything the script changed and re-files the timers
-- of the sessions it touched: one command per key, whatever the number of
-- sessions.
-- The lists flush builds its commands in: kept from call to call, with
-- their lengths counted (a table made anew for every call rehashes as it
-- grows, ~800 instructions at each power of two); what lies past a count
-- is stale and never read.
local SFLAT, ZADDL, ZREML, SETL, DELL, AFLAT, RETL = {}, {}, {}, {}, {}, {}, {}

-- RET_MARK is the member of due that stands for the head of the retention
-- list. It is 65 bytes long on purpose: Redis keeps a sorted set with a
-- member over 64 bytes (zset-max-listpack-value) as a skiplist, where a
-- ZADD or ZREM is a lookup, not a scan of every member, as it is in the
-- listpack Redis keeps a set of up to 128 short members in (the due set of
-- an account with ~100 live sessions and ended ones in retention would
-- be one).
local RET_MARK = '~retained~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~'

-- trim_retained removes, before their retention runs out, the k ended
-- sessions at the head of the retention list (those that ended first):
-- an account keeps at most CFG.retain_max ended sessions, so a client
-- that opens and closes sessions in a loop cannot fill Redis. At most
-- TRIM_MAX go in one call, however many times it writes back (catch_up
-- writes back after every timer; after the bound was lowered, the next
-- calls take the rest). RET_MARK may then be due before the new head: it finds
-- nothing due and moves on (retained_due).
local TRIM_MAX = 1000
local function trim_retained(k)
  k = math.min(k, TRIM_MAX - TRIMMED)
  if k <= 0 then return end
  local entries = rcall('LRANGE', K_RET, '0', num_str(k - 1))
  local ids, n = {}, 0
  for j = 1, #entries do
    local e = entries[j]
    local sp = find(e, ' ', 1, true)
    if sp then
      local id = sub(e, sp + 1)
      n = n + 1
      ids[n] = id
      S[id] = false
      MS[id] = nil
    end
  end
  TRIMMED = TRIMMED + #entries
  rcall('LTRIM', K_RET, num_str(#entries), '-1')
  call_list('HDEL', K_SESS, ids, n)
  MWROTE = true
end

local function flush()
  local sflat, zadd, zrem, ret = SFLAT, ZADDL, ZREML, RETL
  local ns, na, nr, nt, ret_min = 0, 0, 0, 0, nil
  local written, nw, fmin = WRITTEN, WRITTEN_N, nil -- (locals: an upvalue costs more a use)
  for sid in pairs(SDIRTY) do
    SDIRTY[sid] = nil -- (clearing a field during the traversal is allowed)
    local s = S[sid]
    if s then
      local js = jencode(s)
      SESSJSON[s] = js
      nw = nw + 1
      written[nw] = s
      sflat[ns + 1] = sid
      sflat[ns + 2] = js
      ns = ns + 2
      local st, d, dstr = s.state, nil, nil
      -- due(s), for the two commonest states written out
      if st == 'ended' then
        d = (STRNUM[s.at] or str_num(s.at)) + CFG.retention
      elseif st == 'active' and not s.ppu_at then
        dstr = s.lease_until -- (filed as it is: no number to string again)
        d = STRNUM[dstr] or str_num(dstr)
      else
        d = due(s)
      end
      -- the mirror follows what is written (lib.lua, MIRRORS); it does not
      -- keep ended sessions
      if st == 'ended' then
        MS[sid] = nil
        -- its live timer goes; its removal is an entry of the retention
        -- list, which a single timer (RET_MARK) stands for in due (catch_up)
        zrem[nr + 1] = sid
        nr = nr + 1
        ret[nt + 1] = (NUMSTR[d] or num_str(d)) .. ' ' .. sid
        nt = nt + 1
        if ret_min == nil or d < ret_min then ret_min = d end
        d = nil
      else
        if MS[sid] == nil then MIRROR_N = MIRROR_N + 1 end
        MS[sid] = js
        if d then
          zadd[na + 1] = dstr or NUMSTR[d] or num_str(d)
          zadd[na + 2] = sid
          na = na + 2
        else
          zrem[nr + 1] = sid
          nr = nr + 1
        end
      end
      if d and (fmin == nil or d < fmin) then fmin = d end
    end
  end
  WRITTEN_N, FILED_MIN = nw, fmin
  local retained -- the retention list's length, when this call added to it
  if nt > 0 then
    retained = call_list('RPUSH', K_RET, ret, nt)
    -- RET_MARK is due when the list's head is: filed here when the list was
    -- empty (or the marker was lost), never moved later (LT)
    rcall('ZADD', K_DUE, 'LT', NUMSTR[ret_min] or num_str(ret_min), RET_MARK)
    RET_FILED = true
    if FILED_MIN == nil or ret_min < FILED_MIN then FILED_MIN = ret_min end
  end
  if ns > 0 then MWROTE = true end
  if FILED_MIN and (MIN_ADDED == nil or FILED_MIN < MIN_ADDED) then MIN_ADDED = FILED_MIN end
  call_list('HSET', K_SESS, sflat, ns)
  if retained and retained > CFG.retain_max then trim_retained(retained - CFG.retain_max) end
  call_list('ZREM', K_DUE, zrem, nr)
  if na > 0 and DUE_SEEN and DUE_BEFORE == nil and not RET_FILED then
    -- due had no timer when the call began: maybe no key at all, which
    -- these timers alone would make a listpack (see PARKED)
    zadd[na + 1] = PARKED
    zadd[na + 2] = RET_MARK
    na = na + 2
    RET_FILED = true
  end
  call_list('ZADD', K_DUE, zadd, na)
  -- the seats and the users' seat sets share a hash: one HSET, one HDEL
  local set, del, nset, ndel = SETL, DELL, 0, 0
  for key in pairs(SEATDIRTY) do
    SEATDIRTY[key] = nil
    local v = MT[key]
    if v and v ~= '' then
      set[nset + 1] = key
      set[nset + 2] = v
      nset = nset + 2
    else
      -- a free seat, or an empty seat set ("")
      MT[key] = false
      del[ndel + 1] = key
      ndel = ndel + 1
    end
  end
  if nset > 0 or ndel > 0 then MWROTE = true end
  call_list('HSET', K_SEATS, set, nset)
  call_list('HDEL', K_SEATS, del, ndel)
  if A then
    -- what this call changed in the hashes the mirror covers carries a new
    -- stamp (lib.lua, MIRRORS)
    -- (the mirror keeps A too: a change to the account hash carries one)
    if (MWROTE or next(A._dirty)) and not (STAMP and A.stamp == STAMP) then aset('stamp', new_stamp()) end
    local flat, nf, dirty = AFLAT, 0, A._dirty
    for f in pairs(dirty) do
      dirty[f] = nil -- (emptied as it is read: kept, not made anew, as SDIRTY)
      local v = A[f]
      if type(v) == 'number' then v = num_str(v) end
      flat[nf + 1] = f
      flat[nf + 2] = v
      nf = nf + 2
    end
    call_list('HSET', K_ACCT, flat, nf)
  end
end

-- catch_up fires, in time order, the timers that fell due by now, so every
-- operation acts on the account as it is at this instant, whichever node
-- reaped last. It stops after limit steps; the reaper does the rest. It
-- looks at the first timer alone (most scripts find nothing due), then
-- reads what is due a chunk at a time; a step that files a timer before
-- now makes it read again, so order holds.
local CHUNK = 32
local RET_READ = 4 -- retention entries catch_up reads at once (2 to CHUNK)

-- retained_due removes the ended sessions whose retention ran out, when
-- RET_MARK fell due: from the head of the retention list on (the list is
-- in the order they ended, and every entry has the same retention, so it
-- is in time order but for sessions a catch-up ended at an earlier instant
-- than one already listed, which go a little late). It adds their ids to
-- gone (catch_up deletes them), files RET_MARK at the next entry's time or
-- removes it with the list empty, and returns how many it removed, at
-- most about budget (past that RET_MARK stays due and the reaper does the
-- rest). It reads a few entries at a time, about as many as fell due last
-- time: an entry read is a string made, used or not.
local function retained_due(now, budget, gone)
  local k, nd, want, off = 0, nil, RET_READ, 0
  local empty = false
  while true do
    local entries = rcall('LRANGE', K_RET, num_str(off), num_str(off + want - 1))
    for j = 1, #entries do
      local e = entries[j]
      local sp = find(e, ' ', 1, true)
      local d = sp and str_num(sub(e, 1, sp - 1))
      if d and d >= now then
        nd = d
        break
      end
      if sp then
        local id = sub(e, sp + 1)
        gone[#gone + 1] = id
        S[id] = false
        MS[id] = nil
      end
      k = k + 1
    end
    if nd then break end
    if #entries < want then
      empty = true
      break
    end
    if k >= budget then break end
    off = off + want
    want = math.min(want * 2, CHUNK)
  end
  if k > 0 then
    rcall('LTRIM', K_RET, num_str(k), '-1')
    MWROTE = true
  end
  if nd then
    rcall('ZADD', K_DUE, NUMSTR[nd] or num_str(nd), RET_MARK)
    RET_FILED = true
  elseif empty then
    -- parked (see PARKED), at once, not with catch_up's other removals at
    -- the end of its chunk: a step later in the chunk may end a session,
    -- whose write-back files RET_MARK again (flush: ZADD LT moves it from
    -- PARKED), and parking it after that would lose the timer of a list
    -- that is no longer empty
    rcall('ZADD', K_DUE, PARKED, RET_MARK)
    RET_FILED = true
  end
  RET_READ = math.min(k + 2 + math.floor(k / 4), CHUNK)
  return k
end

local function catch_up(now, limit)
  local first_t = first_due()
  if not DUE_SEEN then
    -- the first look serves as DUE_BEFORE too
    DUE_SEEN = true
    DUE_BEFORE = first_t
  end
  -- strictly before now: what falls due at this very instant belongs to
  -- the caller (a close at the instant a PPU minute starts does not start
  -- that minute)
  if not first_t or first_t >= now then
    LAGGING = false
    return 0
  end
  local before = '(' .. num_str(now)
  local n = 0
  local gone, zrem = {}, {} -- retention ran out: session ids, due members
  while n < limit do
    -- members only: an ended session's needs no time, and a live one's is
    -- due(s), the very score write-back filed (no score to format in
    -- Redis and parse here)
    local items = rcall('ZRANGEBYSCORE', K_DUE, '-inf', before, 'LIMIT', '0', num_str(math.min(CHUNK, limit - n)))
    if #items == 0 then break end
    local again = false
    for i = 1, #items do
      local sid = items[i]
      if sid == RET_MARK then
        n = n + retained_due(now, limit - n, gone)
      elseif byte(sid, 1) == 126 then -- "~id" (before the retention list): its retention ran out
        local id = sub(sid, 2)
        gone[#gone + 1] = id
        zrem[#zrem + 1] = sid
        S[id] = false
        MS[id] = nil
        MWROTE = true
      else
        local s = sess(sid)
        local t = s and s.state ~= 'ended' and due(s)
        if not t then
          -- no session, an ended one (its retention is "~id"), or no
          -- timer: a stale entry
          zrem[#zrem + 1] = sid
        elseif t < now then
          step(s, t)
          flush()
          -- a timer filed before now must take its turn among the rest
          again = FILED_MIN ~= nil and FILED_MIN < now
        else
          -- its timer is not due: an earlier operation of this call moved
          -- it and has not written it back yet (or the entry is stale);
          -- write-back files it where it belongs
          touch(s)
        end
      end
      n = n + 1
      if again then break end
    end
    call_list('HDEL', K_SESS, gone)
    call_list('ZREM', K_DUE, zrem)
    gone, zrem = {}, {}
    if not again and #items < CHUNK then break end
  end
  -- stopped at the limit: more may be due (the reaper fires them; until
  -- then an operation brings the sessions it names up to date: overdue)
  LAGGING = n >= limit
  return n
end

-- start is the first call of every operation that needs the account: it
-- loads it and, the first time in a script, catches up. It returns the
-- current time, or nil when the account does not exist.

local function start()
  if not (A or acct()) then return nil end
  local now = NOW_MS or now_ms()
  if not CAUGHT_UP then
    CAUGHT_UP = true
    catch_up(now, CFG.catchup or 100)
  end
  return now
end
