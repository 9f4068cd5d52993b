-- Starts a session after the password was verified. Re-checks the account
-- lock and the one-session-per-user rule here, atomically, because another
-- replica may have changed either since the caller looked.
-- The session's cursor starts after what the last session saw in the inbox
-- and at the lobby's head (broadcasts are not kept for users who were away).
-- KEYS: user hash, session hash, inbox. ARGV: now, token, address, lobby head
--@include values
if redis.call('EXISTS', KEYS[1]) == 0 then return {'invalid_user'} end
local u = redis.call('HMGET', KEYS[1], 'lockedUntil', 'seen', 'seq')
local lockedUntil, seen, seq = str(u[1]), str(u[2]) or '0', str(u[3]) or '0'
if lockedUntil and tonumber(lockedUntil) > tonumber(ARGV[1]) then return {'account_blocked'} end
local s = redis.call('HMGET', KEYS[2], 'token', 'ended')
if str(s[1]) and not str(s[2]) then return {'already_logged_in'} end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'token', ARGV[2], 'started', ARGV[1], 'active', ARGV[1],
  'cursorInbox', seen, 'cursorLobby', ARGV[4], 'address', ARGV[3])
redis.call('HSET', KEYS[1], 'fails', 0)
return {'ok', seen, tonumber(seq), redis.call('LLEN', KEYS[3])}
