-- Takes a user off the online set and records when their session ended, for
-- whoelsesince. The user stays online if their entry is newer than `ended`:
-- a new login raced ahead of this.
-- KEYS: online set, last-seen set. ARGV: user, ended
--@include values
local score = str(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if score and tonumber(score) <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
