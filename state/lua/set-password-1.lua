-- Replaces an existing user's password hash and lifts any login lock; never
-- creates a user (a removal may have raced ahead).
-- KEYS: user hash. ARGV: hash
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'fails', '0', 'lockedUntil', '0')
return 1
