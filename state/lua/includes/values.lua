-- A reply value as a string, or nil when absent. Redis gives false for a
-- missing hash field; ioredis-mock gives a non-string stand-in instead.
local function str(v)
  if type(v) == 'string' then return v end
  if type(v) == 'number' then return tostring(v) end
  return nil
end
