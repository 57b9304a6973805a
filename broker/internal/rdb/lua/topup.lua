-- topup.lua: add PPU minutes to the balance, recorded in the ledger under
-- an idempotency key, so a retried top-up counts once.
-- Arguments: a[1] minutes (> 0), a[2]
-- idempotency key, a[3] who, a[4] note.
-- Reply: OK {balance, duplicate}; NOT_FOUND {}.
OPS['topup'] = function(a)
  local minutes, idem, by, note = tonumber(a[1]), 'topup:' .. a[2], a[3], a[4]

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  if redis.call('HEXISTS', K_BILLED, idem) == 1 then
    return ST_OK, {balance = anum('balance'), duplicate = true}
  end
  local bal = anum('balance') + minutes
  aset('balance', bal)
  ledger_add({kind = 'topup', delta = minutes, balance = bal, at = now, by = by, note = note, key = a[2]}, idem)
  emit({type = 'account'})
  return ST_OK, {balance = bal, duplicate = false}
end
