-- Appends one encoded event to a user's inbox and wakes the replicas that
-- serve the user. The sequence number is the event's id and the cursor after
-- it; sequence numbers are consecutive, so an id is also a list position and a
-- trimmed backlog is visible as a jump (see read.lua).
local function append(userKey, inboxKey, wakeChannel, body, cap)
  local seq = redis.call('HINCRBY', userKey, 'seq', 1)
  local len = redis.call('RPUSH', inboxKey, body)
  if len > cap then
    redis.call('LTRIM', inboxKey, -cap, -1)
  end
  redis.call('PUBLISH', wakeChannel, seq .. ' ' .. body)
  return seq
end
