-- Counts one failed login against an account or an address; the `limit`-th
-- failure in a row locks it until `lockedUntil` and starts the count again.
-- While it is locked nothing is counted: attempts that were in flight when
-- the lock fell are refused as locked, and cannot lock it a second time.
-- An account's record must already exist: a count never creates a user.
-- An address keeps two counts in a row (unknown names, wrong passwords for any
-- account) and one lock.
-- KEYS: user or address hash. ARGV: limit, now, lockedUntil, ttlMs ('' keeps
-- the key), mustExist (1/0), the count's field ('fails' or 'passwordFails')
-- Returns 'counted', 'locked' (this failure locked it), 'still_locked' or
-- 'none' (no such account).
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return 'none' end
local until_ = tonumber(redis.call('HGET', KEYS[1], 'lockedUntil') or '0')
if until_ > tonumber(ARGV[2]) then return 'still_locked' end
local n = redis.call('HINCRBY', KEYS[1], ARGV[6], 1)
local result = 'counted'
if n >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'fails', 0, 'passwordFails', 0, 'lockedUntil', ARGV[3])
  result = 'locked'
end
if ARGV[4] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return result
