--[[
  SWEEP_QUEUE: recover a queue's lapsed leases and ended delays (publishing a wake-up), and set its
  exact score in `due` (or remove it when nothing is delayed or claimed).

  KEYS[1..QUEUE_WIDTH]   the queue block
  KEYS[QUEUE_WIDTH + 1]  due
  ARGV[1]  wake channel
  ARGV[2]  queue name
  Returns the queue's dueInMs (-1: nothing delayed or claimed).
]]
--- @include "now-ms"
--- @include "qkeys"
--- @include "notify"
--- @include "recover"
--- @include "next-due"

local q = qkeys(1)
local due = KEYS[QUEUE_WIDTH + 1]
local now = now_ms()
local before = redis.call('LLEN', q.ready)
recover(q, now)
notify(q, before, ARGV[1], ARGV[2])
local d = next_due(q, now)
if d < 0 then redis.call('ZREM', due, ARGV[2]) else redis.call('ZADD', due, now + d, ARGV[2]) end
return d
