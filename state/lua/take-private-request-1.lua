-- Consumes a pending private-chat request so it can be answered only once.
-- KEYS: private requests hash. ARGV: requester, now
--@include values
local expires = str(redis.call('HGET', KEYS[1], ARGV[1]))
if not expires then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if tonumber(expires) < tonumber(ARGV[2]) then return 0 end
return 1
