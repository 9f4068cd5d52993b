-- Token bucket kept in fields `tokens` and `ts` of a hash: `rate` per second,
-- at most `burst` saved up. A rate of 0 or less means no limit.
--@include values
local function take(key, nowText, rate, burst)
  if rate <= 0 then return true end
  local now = tonumber(nowText)
  local b = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = burst
  if str(b[1]) and str(b[2]) then
    tokens = tonumber(str(b[1])) + (now - tonumber(str(b[2]))) * rate / 1000
    if tokens > burst then tokens = burst end
  end
  local allowed = tokens >= 1
  if allowed then tokens = tokens - 1 end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', nowText)
  return allowed
end
