-- end.lua: End Selected Sessions: active sessions get the notice and a
-- deadline, standby and paused ones end at once, terminating and ended
-- ones are left as they are (a participant's close is close.lua).
-- The broker checks permissions before; the script re-checks the one thing
-- that can change under it: another user's paused session is hidden.
-- Arguments: a1 actor user id ("" for the system), a2 actor name,
-- a3 reason, a4 JSON list of session ids.
-- Reply: OK {results = [{id, status, session}]}.
OPS['end'] = function(a1, a2, a3, a4)
  local actor, by, reason, ids = a1, a2, a3, cjson.decode(a4)

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  local results = {}
  for i, sid in ipairs(ids) do
    local s = sess(sid)
    local r = {id = sid}
    if not s or (actor ~= '' and s.user ~= actor and s.state == 'paused') then
      r.status = ST_NOT_FOUND
    else
      if LAGGING then overdue(s, now) end
      terminate(s, reason, by, now)
      r.status = ST_OK
      r.session = s
    end
    results[i] = r
  end
  return ST_OK, {results = results}
end
