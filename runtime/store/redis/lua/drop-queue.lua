--[[
  DROP_QUEUE: delete a queue and everything in it.

  KEYS[1..QUEUE_WIDTH]   the queue block
  KEYS[QUEUE_WIDTH + 1]  due
  ARGV[1]  queue name
  Returns how many items were dropped.
]]
--- @include "qkeys"

local q = qkeys(1)
local count = redis.call('HLEN', q.payload)
redis.call('DEL', unpack(KEYS, 1, QUEUE_WIDTH))
redis.call('ZREM', KEYS[QUEUE_WIDTH + 1], ARGV[1])
return count
