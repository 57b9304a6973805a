-- renew.lua: a desktop client's heartbeat renews the leases of its sessions.
-- Arguments: a1 user id, a2 JSON list of
-- {"id":session id,"fence":token}.
-- Reply: OK {results = [{id, status, session}]}: per session OK (renewed, or
-- nothing to renew), NOT_FOUND (unknown, or not this user's), STALE (the
-- token is not the session's current one). The session carries any pending
-- ending notice (state terminating, deadline, reason, by); a session that
-- has ended (its lease ran out before this heartbeat, say) is OK and ended.
OPS['renew'] = function(a1, a2)
  local uid, list = a1, cjson.decode(a2)

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  local results = {}
  for i, item in ipairs(list) do
    local s = sess(item.id)
    local r = {id = item.id}
    if not s or s.user ~= uid then
      r.status = ST_NOT_FOUND
    elseif s.fence ~= item.fence then
      r.status = ST_STALE
    else
      -- a lease that ran out is not renewed: the session has ended
      if LAGGING then overdue(s, now) end
      r.status = ST_OK
      if s.state == 'active' or s.state == 'terminating' then
        s.lease_until = num_str(now + dur('lease'))
        touch(s)
      end
      r.session = s
    end
    results[i] = r
  end
  return ST_OK, {results = results, lease = dur('lease'), now = now}
end
