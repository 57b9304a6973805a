-- reap.lua: fire the timers of an account that fell due (leases, notices,
-- standby and paused times, PPU minutes, retention of ended sessions), in
-- time order.
-- Arguments: a1 most timers to fire.
-- Reply: OK {steps, next = the account's next timer in ms or -1, now};
-- next is read once the whole batch has written back, so an operation
-- after this one in the batch cannot leave it stale.
OPS['reap'] = function(a1)
  local limit = tonumber(a1)

  if not acct() then return ST_NOT_FOUND, {next = '-1'} end
  local now = now_ms()
  CAUGHT_UP = true
  local n = catch_up(now, limit)
  local p = {steps = n, now = now}
  LATE[#LATE + 1] = function()
    local nxt = first_due()
    p.next = nxt and num_str(nxt) or '-1'
  end
  return ST_OK, p
end
