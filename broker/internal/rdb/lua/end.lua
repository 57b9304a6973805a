-- end.lua: end sessions. mode "terminate" (End Selected Sessions, block):
-- active sessions get the notice and a deadline, standby and paused ones
-- end at once, terminating and ended ones are left as they are. mode
-- "close" (a participant closes): the session ends at once.
-- The broker checks permissions before; the script re-checks the one thing
-- that can change under it: another user's paused session is hidden. A
-- close by a user (actor set) is for its own sessions only.
-- Arguments: a[1] actor user id ("" for a
-- participant or the system), a[2] actor name, a[3] mode, a[4]
-- reason, a[5] JSON list of session ids.
-- Reply: OK {results = [{id, status, session}]}.
OPS['end'] = function(a)
  local actor, by, mode, reason, ids = a[1], a[2], a[3], a[4], cjson.decode(a[5])

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  local results = {}
  for i, sid in ipairs(ids) do
    local s = sess(sid)
    local r = {id = sid}
    if not s or (actor ~= '' and s.user ~= actor and (mode == 'close' or s.state == 'paused')) then
      r.status = ST_NOT_FOUND
    else
      if mode == 'close' then
        end_session(s, reason, by, now)
      else
        terminate(s, reason, by, now)
      end
      r.status = ST_OK
      r.session = s
    end
    results[i] = r
  end
  return ST_OK, {results = results}
end
