-- Replaces a user's password hash with one remade at a higher cost, only if
-- the stored hash is still the one the login checked: a reset that raced
-- with the login keeps its new password. Leaves the login lock alone.
-- KEYS: user hash. ARGV: the hash checked, the new hash
if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'hash', ARGV[2])
return 1
