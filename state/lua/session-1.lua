-- Checks a session token for one command: the session must exist, match the
-- token and not have ended; then the command rate limit; then, for commands
-- that count as activity, the idle timer is reset. Extra ARGV pairs are
-- session fields to set (the peer-to-peer listener, a TCP connection's cursor).
-- KEYS: session hash. ARGV: token, now, touch (1/0), rate, burst, [field, value]...
-- Returns {status, p2pHost, p2pPort, cursorInbox, cursorLobby, ended reason}.
--@include bucket
local s = redis.call('HMGET', KEYS[1], 'token', 'ended', 'cursorInbox', 'cursorLobby')
if str(s[1]) ~= ARGV[1] then return {'none'} end
if str(s[2]) then return {'ended', '', '', str(s[3]) or '0', str(s[4]) or '0', str(s[2])} end
if not take(KEYS[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])) then return {'rate_limited'} end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'active', ARGV[2]) end
for k = 6, #ARGV - 1, 2 do
  redis.call('HSET', KEYS[1], ARGV[k], ARGV[k + 1])
end
local p = redis.call('HMGET', KEYS[1], 'p2pHost', 'p2pPort', 'cursorInbox', 'cursorLobby')
return {'ok', str(p[1]) or '', str(p[2]) or '', str(p[3]) or '0', str(p[4]) or '0', ''}
