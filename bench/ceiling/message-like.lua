-- The Redis work of one direct message, as a stand-in written for the bench
-- (not the server's own scripts): check the sender's session and reset its
-- idle timer; check that the recipient exists, has not blocked the sender
-- and is online; append the event to the recipient's inbox, trim it, and
-- publish a wake-up. The server does this in two script calls.
-- KEYS: sender session, recipient user, recipient blocks, recipient session, recipient inbox, wake channel
-- ARGV: now, sender, event
local s = redis.call('HMGET', KEYS[1], 'token', 'ended')
redis.call('HSET', KEYS[1], 'active', ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then return -2 end
local r = redis.call('HMGET', KEYS[4], 'token', 'ended')
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local len = redis.call('RPUSH', KEYS[5], ARGV[3])
if len > 10000 then redis.call('LTRIM', KEYS[5], -10000, -1) end
redis.call('PUBLISH', KEYS[6], seq .. ' ' .. ARGV[3])
return seq
