-- settings.lua: change an account's settings. The broker validates types
-- and ranges first; the script refuses what depends on the state: the
-- counting mode changes only while no seat is held. Raising seats or
-- turning promotion on promotes waiting PPU keys at once.
-- Arguments: a1 JSON object of the fields to
-- set (strings).
-- Reply: OK {account}; NOT_FOUND {}; BAD_STATE {field} when refused.
OPS['settings'] = function(a1)
  local changes = cjson.decode(a1)

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  -- a seat is held while prepaid seats are in use or PPU sessions run (the
  -- account's counters, which earlier operations of this batch kept: the
  -- seats hash also lists users' paused sessions, so its length says
  -- nothing)
  if changes.mode and changes.mode ~= (A.mode or 'user_device') and (A.used > 0 or A.ppu_sess > 0) then
    return ST_BAD_STATE, {field = 'mode'}
  end
  for f, v in pairs(changes) do aset(f, v) end
  acct_counters() -- (a change sets strings)
  DUR = {} -- the durations may have changed
  promote(now)
  emit({type = 'account'})
  local out = {}
  for f, v in pairs(A) do
    if f ~= '_dirty' and f ~= 'stamp' then
      if type(v) == 'number' then v = num_str(v) end
      out[f] = v
    end
  end
  return ST_OK, {account = out}
end
