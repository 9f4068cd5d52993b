-- The inbox half of one long-poll read: checks the token, acknowledges the
-- cursor passed as `after` (both of its positions become the stored cursor)
-- or, without one, takes the stored cursor, and returns the inbox events
-- after it. The caller reads the lobby half and, for a stored cursor, saves
-- the cursor it ends at. An ended session can still read up to its
-- session_end event; after that it answers 'ended'.
-- KEYS: session hash, user hash, inbox
-- ARGV: token, after inbox position ('' = stored cursor), after lobby position, limit
-- Returns {'ok', cursorInbox, cursorLobby, seq, from, gap, count, joined}.
--@include read
--@include session
local status = sessionStatus(KEYS[1], ARGV[1])
if status == 'none' then return {'none'} end
local inbox, lobby = ARGV[2], ARGV[3]
if inbox == '' then
  local c = redis.call('HMGET', KEYS[1], 'cursorInbox', 'cursorLobby')
  inbox, lobby = str(c[1]) or '0', str(c[2]) or '0'
else
  redis.call('HSET', KEYS[1], 'cursorInbox', inbox, 'cursorLobby', lobby)
end
-- A removed user's ended session keeps the inbox's sequence itself (end-session-5.lua).
local meta = KEYS[2]
if status == 'ended' and redis.call('EXISTS', KEYS[2]) == 0 then meta = KEYS[1] end
local seq, from, gap, count, joined = readAfter(meta, KEYS[3], tonumber(inbox), tonumber(ARGV[4]))
if status == 'ended' and count == 0 then return {'ended'} end
return {'ok', inbox, lobby, seq, from, gap, count, joined}
