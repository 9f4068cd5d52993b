-- One long-poll read: checks the token, acknowledges `after` (or, without it,
-- uses the session's stored cursor and advances it past what is returned),
-- and returns the events after it. An ended session can still read up to its
-- session_end event; after that it answers 'ended'.
-- KEYS: session hash, user hash, inbox. ARGV: token, after ('' = stored), limit
--@include read
local s = redis.call('HMGET', KEYS[1], 'token', 'ended', 'cursor')
if str(s[1]) ~= ARGV[1] then return {'none'} end
local after = ARGV[2]
local stored = after == ''
if stored then after = str(s[3]) or '0' end
local seq, from, gap, count, joined = readAfter(KEYS[2], KEYS[3], tonumber(after), tonumber(ARGV[3]))
if str(s[2]) and count == 0 then return {'ended'} end
local cursor = after
if stored and count > 0 then cursor = from + count - 1 end
redis.call('HSET', KEYS[1], 'cursor', cursor)
return {'ok', seq, from, gap, count, joined}
