--[[
  UNLOCK: release a lock the owner holds.

  KEYS[1]  the lock
  ARGV[1]  owner
  Returns 1 when the owner held the lock (now released), else 0.
]]
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local sep = string.find(current, ':', 1, true)
if string.sub(current, sep + 1) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
