--[[
  PARTITION_STATS: count a group's partitions that hold items (and prune the index of expired and
  emptied ones).

  KEYS[1]  the group's index
  ARGV[1]  list prefix
  Returns {partitions, items}.
]]
--- @include "now-ms"

local index, prefix = KEYS[1], ARGV[1]
redis.call('ZREMRANGEBYSCORE', index, '-inf', now_ms())
local members = redis.call('ZRANGE', index, 0, -1)
local partitions, items = 0, 0
for _, member in ipairs(members) do
  local n = redis.call('LLEN', prefix .. member)
  if n == 0 then
    redis.call('ZREM', index, member)
  else
    partitions = partitions + 1
    items = items + n
  end
end
return { partitions, items }
