--[[
  REMOVE: take an item out of its queue, wherever it is (ready, delayed or claimed).

  KEYS[1..QUEUE_WIDTH]  the queue block
  ARGV[1]  wake channel
  ARGV[2]  queue name
  ARGV[3]  id
  Returns 'pending', 'claimed' or nil (not in the queue).
]]
--- @include "now-ms"
--- @include "qkeys"
--- @include "notify"
--- @include "recover"
--- @include "forget"

local q = qkeys(1)
local id = ARGV[3]
local before = redis.call('LLEN', q.ready)
recover(q, now_ms())
notify(q, before, ARGV[1], ARGV[2])
if redis.call('HEXISTS', q.payload, id) == 0 then return false end
local where = 'pending'
if redis.call('ZREM', q.claimed, id) == 1 then
  where = 'claimed'
elseif redis.call('ZREM', q.delayed, id) == 0 then
  redis.call('LREM', q.ready, 1, id)
end
forget(q, id)
return where
