--[[
  PARTITION_PUSH: append values to one partition of a group. A group is an index ZSET (partition
  -> expiry deadline, ms server time; +inf: none) and one LIST per partition, named
  `<list prefix><partition>`. Lists expire on their own (PEXPIRE on push); pops are plain LPOP /
  BLMPOP, so a list emptied by a pop disappears while its index entry stays until a script notices
  the list is gone.

  KEYS[1]    the partition's list
  KEYS[2]    the group's index
  ARGV[1]    partition
  ARGV[2]    ttlMs ('' = keep)
  ARGV[3]    maxLength ('' = none)
  ARGV[4]    maxPartitions ('' = none)
  ARGV[5]    list prefix
  ARGV[6..]  the values
  Returns {1, length} or {0, reason ('length' | 'partitions'), count}.
]]
--- @include "now-ms"

local list, index = KEYS[1], KEYS[2]
local partition, prefix = ARGV[1], ARGV[5]
local now = now_ms()
local n = #ARGV - 5
local length = redis.call('LLEN', list)
if n == 0 then return { 1, length } end
if ARGV[3] ~= '' and length + n > tonumber(ARGV[3]) then return { 0, 'length', length } end
if length == 0 and ARGV[4] ~= '' then
  local max = tonumber(ARGV[4])
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  redis.call('ZREM', index, partition)
  local count = redis.call('ZCARD', index)
  if count >= max then
    -- Partitions emptied by pops still have index entries: drop those, then count again.
    local members = redis.call('ZRANGE', index, 0, -1)
    for _, member in ipairs(members) do
      if redis.call('EXISTS', prefix .. member) == 0 then redis.call('ZREM', index, member) end
    end
    count = redis.call('ZCARD', index)
    if count >= max then return { 0, 'partitions', count } end
  end
end
for i = 6, #ARGV, 1000 do
  redis.call('RPUSH', list, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[2] ~= '' then
  local ttl = tonumber(ARGV[2])
  redis.call('PEXPIRE', list, ttl)
  redis.call('ZADD', index, now + ttl, partition)
else
  local left = redis.call('PTTL', list)
  if left >= 0 then redis.call('ZADD', index, now + left, partition) else redis.call('ZADD', index, '+inf', partition) end
end
return { 1, redis.call('LLEN', list) }
