--[[
  PARTITION_DROP: drop every partition of a group.

  KEYS[1]  the group's index
  ARGV[1]  list prefix
  Returns how many values the group had.
]]
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local items = 0
for _, member in ipairs(members) do
  local list = ARGV[1] .. member
  items = items + redis.call('LLEN', list)
  redis.call('DEL', list)
end
redis.call('DEL', KEYS[1])
return items
