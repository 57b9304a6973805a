-- topup.lua: add PPU minutes to the balance, recorded in the ledger under
-- an idempotency key, so a retried top-up counts once.
-- Arguments: a1 minutes (> 0), a2
-- idempotency key, a3 who, a4 note.
-- Reply: OK {balance, duplicate}; NOT_FOUND {}.
OPS['topup'] = function(a1, a2, a3, a4)
  local minutes, idem, by, note = tonumber(a1), 'topup:' .. a2, a3, a4

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  if rcall('HEXISTS', K_BILLED, idem) == 1 then
    return ST_OK, {balance = A.balance, duplicate = true}
  end
  local bal = A.balance + minutes
  aset('balance', bal)
  ledger_add({kind = 'topup', delta = minutes, balance = bal, at = now, by = by, note = note, key = a2}, idem)
  emit({type = 'account'})
  return ST_OK, {balance = bal, duplicate = false}
end
