-- Appends one event for every online user to the lobby, with the users who
-- must not get it (`skip`, comma-separated: the subject of a presence event
-- and the users it blocked; the sender of a broadcast and the users who
-- blocked the sender), and wakes every replica. One write, however many users
-- are online.
-- KEYS: lobby meta hash, lobby list, lobby wake channel. ARGV: the stored entry
-- (kind, time, skip and the encoded event: see state/redis.ts), cap
--@include append
return append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]))
