-- Reads events after a cursor (TCP sessions keep their cursor on the
-- connection and resend it with each command).
-- KEYS: user hash, inbox. ARGV: after, limit
--@include read
local seq, from, gap, count, joined = readAfter(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {seq, from, gap, count, joined}
