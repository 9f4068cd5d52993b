--@include values
-- The one token check every script that acts for a session's holder makes
-- (a command, a long-poll, a held connection's writes): 'none' when the
-- token is not the session's (or there is no session), 'ended' when the
-- session has ended, else 'live'.
local function sessionStatus(sessionKey, token)
  local s = redis.call('HMGET', sessionKey, 'token', 'ended')
  if str(s[1]) ~= token then return 'none' end
  if str(s[2]) then return 'ended' end
  return 'live'
end
