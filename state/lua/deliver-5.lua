-- Delivers one event to a user: refused if the user does not exist or has
-- blocked the sender; to an offline user only when an offline form is given
-- (direct messages are stored, broadcasts and signals are not).
-- KEYS: user hash, session hash, inbox, blocks set, wake channel
-- ARGV: sender ('' = no block check), online body, offline body ('' = drop), cap
--@include append
--@include values
if redis.call('EXISTS', KEYS[1]) == 0 then return {'invalid_user'} end
if ARGV[1] ~= '' and redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then return {'blocked'} end
local s = redis.call('HMGET', KEYS[2], 'token', 'ended')
local online = str(s[1]) ~= nil and str(s[2]) == nil
local body = ARGV[2]
if not online then
  if ARGV[3] == '' then return {'offline'} end
  body = ARGV[3]
end
local seq = append(KEYS[1], KEYS[3], KEYS[5], body, tonumber(ARGV[4]))
if online then return {'ok', seq, 1} end
return {'ok', seq, 0}
