--[[
  PARTITION_CLEAR: empty one partition.

  KEYS[1]  the partition's list
  KEYS[2]  the group's index
  ARGV[1]  partition
  Returns how many values the partition had.
]]
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
