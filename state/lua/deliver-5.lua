-- Delivers one event to a user: refused if the user does not exist or has
-- blocked the sender. A storable event (a direct message) goes to an offline
-- user too, and says which way it went: the script closes its JSON with
-- `"offline":true` or `false`, so the handler encodes it once. Any other
-- event (a private-chat signal) is refused for an offline user.
-- KEYS: user hash, session hash, inbox, blocks set, wake channel
-- ARGV: sender ('' = no block check), the entry's head (kind, time and an
-- empty skip list: see state/redis.ts), encoded event, storable (1/0), cap
--@include append
--@include values
if redis.call('EXISTS', KEYS[1]) == 0 then return {'invalid_user'} end
if ARGV[1] ~= '' and redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then return {'blocked'} end
local s = redis.call('HMGET', KEYS[2], 'token', 'ended')
local online = str(s[1]) ~= nil and str(s[2]) == nil
local body = ARGV[3]
if ARGV[4] == '1' then
  local flag = 'true'
  if online then flag = 'false' end
  body = string.sub(body, 1, -2) .. ',"offline":' .. flag .. '}'
elseif not online then
  return {'offline'}
end
local seq = append(KEYS[1], KEYS[3], KEYS[5], ARGV[2] .. ' ' .. body, tonumber(ARGV[5]))
if online then return {'ok', seq, 1} end
return {'ok', seq, 0}
