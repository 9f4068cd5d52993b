-- Counts one failed login against an account or an address; the `limit`-th
-- failure in a row locks it until `lockedUntil` and starts the count again.
-- KEYS: user or address hash. ARGV: limit, lockedUntil, ttlMs ('' keeps the key)
local n = redis.call('HINCRBY', KEYS[1], 'fails', 1)
local locked = 0
if n >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'fails', 0, 'lockedUntil', ARGV[2])
  locked = 1
end
if ARGV[3] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return locked
