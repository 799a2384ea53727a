--[[
  LIST_PUSH: append values to a list, then set its expiry.

  KEYS[1]    the list
  ARGV[1]    ttlMs ('' = keep)
  ARGV[2..]  the values
  Returns the new length.
]]
if #ARGV < 2 then return redis.call('LLEN', KEYS[1]) end
local length = redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
if ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return length
