-- Takes a user off the online set (and the set of session starts) and
-- records when their session ended, for whoelsesince. The user stays online
-- if their entry is newer than `ended`: a new login raced ahead of this.
-- KEYS: online set, started set, last-seen set. ARGV: user, ended
--@include values
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  local score = str(redis.call('ZSCORE', key, ARGV[1]))
  if score and tonumber(score) <= tonumber(ARGV[2]) then
    redis.call('ZREM', key, ARGV[1])
  end
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
