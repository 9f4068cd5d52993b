-- Counts one failed login against an account or an address; the `limit`-th
-- failure in a row locks it until `lockedUntil` and starts the count again.
-- An account's record must already exist: a count never creates a user.
-- KEYS: user or address hash. ARGV: limit, lockedUntil, ttlMs ('' keeps the key),
-- mustExist (1/0)
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'fails', 1)
local locked = 0
if n >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'fails', 0, 'lockedUntil', ARGV[2])
  locked = 1
end
if ARGV[3] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return locked
