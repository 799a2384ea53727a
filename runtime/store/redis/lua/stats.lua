--[[
  STATS: a queue's counts (after recovering lapsed leases and ended delays).

  KEYS[1..QUEUE_WIDTH]  the queue block
  ARGV[1]  wake channel
  ARGV[2]  queue name
  Returns {pending, claimed, delayed} (pending counts the delayed ones too).
]]
--- @include "now-ms"
--- @include "qkeys"
--- @include "notify"
--- @include "recover"

local q = qkeys(1)
local before = redis.call('LLEN', q.ready)
recover(q, now_ms())
notify(q, before, ARGV[1], ARGV[2])
local delayed = redis.call('ZCARD', q.delayed)
return { redis.call('LLEN', q.ready) + delayed, redis.call('ZCARD', q.claimed), delayed }
