-- Admits one command on a session: the session must exist, match the token
-- and not have ended; then the command rate limit; then, for commands that
-- count as activity, the idle timer is reset.
-- KEYS: session hash. ARGV: token, now, activity (1/0), rate, burst
-- Returns 'ok', 'none', 'ended' or 'rate_limited'.
--@include bucket
--@include session
local status = sessionStatus(KEYS[1], ARGV[1])
if status ~= 'live' then return status end
if not take(KEYS[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])) then return 'rate_limited' end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'active', ARGV[2]) end
return 'ok'
