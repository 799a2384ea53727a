--[[
  INCR: add to an integer key (keeping its TTL), within bounds.

  KEYS[1]  the key
  ARGV[1]  by
  ARGV[2]  max ('' = none)
  ARGV[3]  min ('' = none)
  Returns the new value (as text), or nil when a bound refused it. A value that is not a safe
  integer is a KILN_INVALID error.
]]
local current = redis.call('GET', KEYS[1])
local value = 0
if current then
  local digits = string.match(current, '^%-?(%d+)$')
  if not digits or #digits > 16 then
    return redis.error_reply('KILN_INVALID incr: key does not hold an integer')
  end
  value = tonumber(current)
  if math.abs(value) > 9007199254740991 then
    return redis.error_reply('KILN_INVALID incr: key does not hold an integer')
  end
end
local nextValue = value + tonumber(ARGV[1])
if ARGV[2] ~= '' and nextValue > tonumber(ARGV[2]) then return false end
if ARGV[3] ~= '' and nextValue < tonumber(ARGV[3]) then return false end
if math.abs(nextValue) > 9007199254740991 then
  return redis.error_reply('KILN_INVALID incr: result is not a safe integer')
end
local text = string.format('%.0f', nextValue)
if current then redis.call('SET', KEYS[1], text, 'KEEPTTL') else redis.call('SET', KEYS[1], text) end
return text
