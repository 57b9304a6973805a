-- main.lua: main runs the batch of operations in argv (lib.lua gives the
-- shape), in order, then writes back, publishes the events and answers. Every
-- operation's name is checked, and that its arguments (ARITY says how many)
-- are there, before the first runs, so a malformed batch changes nothing.

-- OUT is the reply list, kept from call to call: a list made anew grows
-- (and is copied) at every power of two on the way to its 2n + 1 items.
local OUT = {}

-- results_json is the JSON of the payload of renew or end: {results =
-- [{id, status, session}], and renew's lease and now}. A session in it
-- that this call wrote goes in as the JSON write-back made, not encoded
-- again (with cjson a session inside a list of tables cost about twice
-- what it costs alone); the rest is cjson's. An id is the session's own
-- (the broker makes them: letters, digits and "-") or, for one not found,
-- the caller's, encoded.
local RJ = {} -- its pieces, kept from call to call (past the count they are stale)
local STATUS_STR = {[0] = '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10'} -- (the ST_ constants)

local function results_json(p)
  local parts, n = RJ, 1
  parts[1] = '{"results":['
  for i, r in ipairs(p.results) do
    local s = r.session
    local js = s and SESSJSON[s]
    n = n + 1
    if not js and s then
      -- a session this call did not write (cold: e.g. one already ended)
      parts[n] = (i > 1 and ',' or '') .. jencode(r)
    elseif s and s.id == r.id then
      -- (pieces, not a concatenation: that would make and hash the
      -- item's string, and table.concat the whole again)
      parts[n] = i > 1 and ',{"id":"' or '{"id":"'
      parts[n + 1] = r.id
      parts[n + 2] = '","status":'
      parts[n + 3] = STATUS_STR[r.status]
      parts[n + 4] = ',"session":'
      parts[n + 5] = js
      parts[n + 6] = '}'
      n = n + 6
    else
      parts[n] = (i > 1 and ',' or '') .. jencode({id = r.id, status = r.status})
    end
  end
  n = n + 1
  if p.lease then
    parts[n] = '],"lease":' .. num_str(p.lease) .. ',"now":' .. num_str(p.now) .. '}'
  else
    parts[n] = ']}'
  end
  return table.concat(parts, '', 1, n)
end

local function main(argv)
  local n = tonumber(argv[2])
  if not n then return redis.error_reply('ERR seatbroker: bad batch') end
  local pos, nargv = 3, #argv
  for _ = 1, n do
    -- (ARITY names exactly the operations OPS has: scripts_test.go)
    local argc = ARITY[argv[pos]]
    if not argc or pos + argc > nargv then
      return redis.error_reply('ERR seatbroker: bad operation ' .. tostring(argv[pos]))
    end
    pos = pos + 1 + argc
  end
  if pos ~= nargv + 1 then return redis.error_reply('ERR seatbroker: bad batch') end

  -- out is the reply: {next due, status 1, payload 1, ...}; a payload is a
  -- table until write-back has run
  local out = OUT
  pos = 3
  for i = 1, n do
    local name = argv[pos]
    local argc = ARITY[name]
    out[2 * i], out[2 * i + 1] = OPS[name](unpack_(argv, pos + 1, pos + argc))
    pos = pos + 1 + argc
  end
  flush()
  for i = 1, #LATE do LATE[i]() end
  -- A session event goes out as the session's JSON alone, the string
  -- write-back made (wrapping it would encode it again); then one
  -- {account, events} message with the other events ends what this call
  -- published. When there are no others, the call's last session is that
  -- message's one event, wrapped by concatenation: one PUBLISH fewer.
  local nev = EV_N
  if nev > 0 or #EVO > 0 then
    local rest, last = EVO, nil
    for i = 1, nev do
      local ev = EV[i]
      EMITTED[ev] = nil -- (left empty for the next call: lib.lua, CLEAN)
      local js = SESSJSON[ev]
      if js then
        if last then rcall('PUBLISH', K_CHANNEL, last) end
        last = js
      else
        rest[#rest + 1] = {type = 'session', session = ev}
      end
    end
    local id = A and A.id or ''
    if last and #rest == 0 and not find(id, '[^%w%-]') then
      -- (account ids are letters, digits and "-": nothing to escape)
      rcall('PUBLISH', K_CHANNEL,
        '{"account":"' .. id .. '","events":[{"type":"session","session":' .. last .. '}]}')
    else
      if last then rcall('PUBLISH', K_CHANNEL, last) end
      rcall('PUBLISH', K_CHANNEL, jencode({account = id, events = rest}))
    end
  end
  -- the first timer moved earlier only if this script filed one before the
  -- old first; then that one is the new first (removals only move it later)
  local moved = ''
  if MIN_ADDED and (DUE_BEFORE == nil or MIN_ADDED < DUE_BEFORE) then
    moved = num_str(MIN_ADDED)
  end
  out[1] = moved
  for i = 1, n do
    -- a session's JSON is the string write-back made (the same text
    -- cjson.encode would make now: nothing changes a session after it)
    local p = out[2 * i + 1] or {}
    out[2 * i + 1] = SESSJSON[p] or (p.results and results_json(p)) or jencode(p)
  end
  -- (Redis reads a reply list up to its first nil: what lies past it is
  -- the stale end of an earlier call's)
  out[2 * n + 2] = nil
  -- every session this call wrote is stored as SESSJSON says: keep its
  -- table for the next calls (lib.lua, DECODED), unless it ended (no
  -- operation reads an ended session but to find it ended). WRITTEN lists
  -- them (a session written twice is there twice: put twice, harmless).
  -- SESSJSON is left empty for the next call (lib.lua, CLEAN): this is
  -- its last reader.
  for i = 1, WRITTEN_N do
    local s = WRITTEN[i]
    if s.state ~= 'ended' then
      -- (decoded_put, inline)
      if DECODED_N >= DECODED_MAX then DECODED, DECODED_N = {}, 0 end
      local js = SESSJSON[s]
      if js then
        DECODED[js] = s
        DECODED_N = DECODED_N + 1
      end
    end
    SESSJSON[s] = nil
  end
  mirror_keep()
  CLEAN = true
  return out
end
