-- Ends a live session exactly once, whoever asks first (a logout, or the
-- inactivity sweeper of any replica): marks it ended, appends its last event
-- and records that the user has seen everything up to it, so the next login
-- starts with only what arrives afterwards (stored offline messages). The
-- ended session is kept a while so its client can still read that last event.
-- KEYS: user hash, session hash, inbox, private requests, wake channel
-- ARGV: token ('' = any), reason, now, idle deadline ('' = none), the stored
-- session_end entry (see state/redis.ts), cap, retainMs, start deadline
-- ('' = none: the session lifetime ends only sessions started by then)
--@include append
--@include values
local s = redis.call('HMGET', KEYS[2], 'token', 'ended', 'active', 'started')
local token, ended, active, started = str(s[1]), str(s[2]), str(s[3]) or '0', str(s[4]) or '0'
if not token or ended then return {'none'} end
if ARGV[1] ~= '' and token ~= ARGV[1] then return {'none'} end
if ARGV[4] ~= '' and tonumber(active) > tonumber(ARGV[4]) then return {'active', active} end
if (ARGV[8] or '') ~= '' and tonumber(started) > tonumber(ARGV[8]) then return {'young', started} end
redis.call('HSET', KEYS[2], 'ended', ARGV[2], 'endedAt', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('DEL', KEYS[4])
local seq = append(KEYS[1], KEYS[3], KEYS[5], ARGV[5], tonumber(ARGV[6]))
redis.call('HSET', KEYS[1], 'seen', seq)
-- The inbox's sequence as of the session's end, so its client can still read
-- it after the user is removed (poll-3.lua).
redis.call('HSET', KEYS[2], 'seq', seq)
return {'ok', seq}
