--[[
  COMPLETE: finish a claim (the item leaves the queue) when it is still held.

  KEYS[1..QUEUE_WIDTH]  the queue block
  ARGV[1]  wake channel
  ARGV[2]  queue name
  ARGV[3]  id
  ARGV[4]  fence
  Returns 1 when completed, 0 when stale (not held).
]]
--- @include "now-ms"
--- @include "qkeys"
--- @include "held"
--- @include "forget"

local q = qkeys(1)
local id = ARGV[3]
if not held(q, id, ARGV[4], now_ms(), ARGV[1], ARGV[2]) then return 0 end
redis.call('ZREM', q.claimed, id)
forget(q, id)
return 1
