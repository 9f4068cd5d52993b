--@include values
-- Reads at most `limit` events after cursor `after` from an inbox. Returns
-- seq (the newest id), from (the id of the first event returned), gap (1 when
-- events after the cursor were trimmed), count, and the events joined by
-- newlines (encoded JSON never contains a raw newline). Results are built
-- with table constructors only: ioredis-mock cannot return other tables.
local function readAfter(userKey, inboxKey, after, limit)
  local seq = tonumber(str(redis.call('HGET', userKey, 'seq')) or '0')
  local len = redis.call('LLEN', inboxKey)
  local first = seq - len + 1
  if after > seq then after = seq end
  local from = after + 1
  if from < first then from = first end
  local gap = 0
  if from > after + 1 then gap = 1 end
  local parts = {}
  if from <= seq and limit > 0 then
    local start = from - first
    local items = redis.call('LRANGE', inboxKey, start, start + limit - 1)
    for k = 1, #items do parts[k] = items[k] end
  end
  return seq, from, gap, #parts, table.concat(parts, '\n')
end
