--[[
  GET_MANY: several keys' values; a list among them is a WRONGTYPE error (GET, unlike MGET).

  KEYS[1..]  the keys
  ARGV: none
  Returns their values (nil for a missing key).
]]
local out = {}
for i = 1, #KEYS do out[i] = redis.call('GET', KEYS[i]) end
return out
