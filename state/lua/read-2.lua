-- Reads events after a cursor from one stream: a user's inbox (KEYS: user
-- hash, inbox) or the lobby (KEYS: lobby meta hash, lobby list); the hash
-- holds the stream's sequence in field `seq`.
-- ARGV: after, limit
--@include read
local seq, from, gap, count, joined = readAfter(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {seq, from, gap, count, joined}
