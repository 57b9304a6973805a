-- renew.lua: a desktop client's heartbeat renews the leases of its sessions.
-- Arguments: a1 user id, a2 the sessions, each as its id and its holder's
-- fencing token, all separated by single spaces ("<id> <fence> <id>
-- <fence>...": store.go, renewList; neither holds a space).
-- Reply: OK {results = [{id, status, session}]}: per session OK (renewed, or
-- nothing to renew), NOT_FOUND (unknown, or not this user's), STALE (the
-- token is not the session's current one). The session carries any pending
-- ending notice (state terminating, deadline, reason, by); a session that
-- has ended (its lease ran out before this heartbeat, say) is OK and ended.
OPS['renew'] = function(a1, a2)
  local uid, list = a1, a2

  local now = start()
  if not now then return ST_NOT_FOUND, {} end
  local results = {}
  local pos, i, len = 1, 0, #list
  while pos <= len do
    -- (an id with no token after it, which store.go never sends, has the
    -- token "": stale, like any token that is not the session's)
    local sp = find(list, ' ', pos, true) or len + 1
    local e = find(list, ' ', sp + 1, true) or len + 1
    local id, fence = sub(list, pos, sp - 1), sp <= len and sub(list, sp + 1, e - 1) or ''
    pos = e + 1
    i = i + 1
    local s = sess(id)
    local r = {id = id}
    if not s or s.user ~= uid then
      r.status = ST_NOT_FOUND
    elseif s.fence ~= fence then
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
