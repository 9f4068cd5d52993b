-- Records fields of a live session (its activity and cursor, its
-- peer-to-peer listener) if the token is still the session's and it has not
-- ended: a session that ended or was replaced meanwhile is left alone, and
-- an expired one is not brought back as a key without a TTL.
-- KEYS: session hash. ARGV: token, field, value, [field, value]...
--@include session
if sessionStatus(KEYS[1], ARGV[1]) ~= 'live' then return 0 end
for k = 2, #ARGV - 1, 2 do
  redis.call('HSET', KEYS[1], ARGV[k], ARGV[k + 1])
end
return 1
