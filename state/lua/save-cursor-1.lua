-- Records a session's cursor, both positions. An ended session takes it too:
-- its client acknowledges the session_end with it, after which a poll from
-- the stored cursor answers 'ended'.
-- KEYS: session hash. ARGV: token, inbox position, lobby position
--@include session
if sessionStatus(KEYS[1], ARGV[1]) == 'none' then return 0 end
redis.call('HSET', KEYS[1], 'cursorInbox', ARGV[2], 'cursorLobby', ARGV[3])
return 1
