-- user_put.lua: add a user, or change one's name, role, seat limit or
-- permission overrides. Status changes go through block.lua, which ends
-- sessions. Lowering max_seats revokes nothing.
-- Arguments: a1 user JSON, a2 "1" to
-- create (refused if it exists) or "0" to update (refused if it does not),
-- a3 the most users the account may have (a new user past it is refused).
-- Names are unique in the account, whatever their case.
-- Reply: OK {user}; NOT_FOUND {}; EXISTS {field = "id" or "name"};
-- BAD_STATE {field = "users"} when the account has a3 users already.
OPS['user_put'] = function(a1, a2, a3)
  local u, create = cjson.decode(a1), a2 == '1'

  if not acct() then return ST_NOT_FOUND, {} end
  local old = user(u.id)
  if create and old then return ST_EXISTS, {field = 'id'} end
  if create and rcall('HLEN', K_USERS) >= tonumber(a3) then return ST_BAD_STATE, {field = 'users'} end
  if not create then
    if not old then return ST_NOT_FOUND, {} end
    u.status = old.status
  end
  local name = string.lower(u.name)
  local holder = rcall('HGET', K_NAMES, name)
  if holder and holder ~= u.id then return ST_EXISTS, {field = 'name'} end
  if old and string.lower(old.name) ~= name then rcall('HDEL', K_NAMES, string.lower(old.name)) end
  rcall('HSET', K_NAMES, name, u.id)
  local js = jencode(u)
  rcall('HSET', K_USERS, u.id, js)
  MU[u.id], MWROTE = js, true -- (lib.lua, MIRRORS)
  emit({type = 'user', user = u})
  return ST_OK, {user = u}
end
