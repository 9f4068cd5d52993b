-- Login guard for one client address: refused while the address is locked,
-- then a token bucket on login attempts.
-- KEYS: address hash. ARGV: now, rate, burst, ttlMs
--@include bucket
local locked = str(redis.call('HGET', KEYS[1], 'lockedUntil'))
if locked and tonumber(locked) > tonumber(ARGV[1]) then return 'address_blocked' end
local allowed = take(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if not allowed then return 'rate_limited' end
return 'ok'
