-- account_create.lua: create an account with its settings and its owner.
-- Arguments: a1 account id, a2 JSON
-- object of settings (strings), a3 owner user JSON.
-- Reply: OK {}; EXISTS {} when the account exists already.
OPS['account_create'] = function(a1, a2, a3)
  local id, fields, owner = a1, cjson.decode(a2), a3

  if rcall('EXISTS', K_ACCT) == 1 then return ST_EXISTS, {} end
  local flat = {'id', id, 'created', tostring(now_ms()), 'used', '0', 'ppu_sess', '0', 'balance', '0', 'fence', '0'}
  for f, v in pairs(fields) do
    flat[#flat + 1] = f
    flat[#flat + 1] = v
  end
  rcall('HSET', K_ACCT, unpack_(flat))
  local u = cjson.decode(owner)
  rcall('HSET', K_USERS, u.id, owner)
  MU[u.id], MWROTE = nil, true -- (lib.lua, MIRRORS)
  rcall('HSET', K_NAMES, string.lower(u.name), u.id)
  return ST_OK, {}
end
