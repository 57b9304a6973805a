-- topup.lua: add PPU minutes to the balance, recorded in the ledger under
-- an idempotency key, so a retried top-up counts once.
-- KEYS: the account's keys (lib.lua). ARGV[2] minutes (> 0), ARGV[3]
-- idempotency key, ARGV[4] who, ARGV[5] note.
-- Reply: OK {balance, duplicate}; NOT_FOUND {}.
local minutes, idem, by, note = tonumber(ARGV[2]), 'topup:' .. ARGV[3], ARGV[4], ARGV[5]

local now = start()
if not now then return reply(ST_NOT_FOUND, {}) end
if redis.call('HEXISTS', K_BILLED, idem) == 1 then
  return reply(ST_OK, {balance = anum('balance'), duplicate = true})
end
local bal = anum('balance') + minutes
aset('balance', bal)
ledger_add({kind = 'topup', delta = minutes, balance = bal, at = now, by = by, note = note, key = ARGV[3]}, idem)
emit({type = 'account'})
return reply(ST_OK, {balance = bal, duplicate = false})
