--[[
  ENQUEUE: add items to a queue, in order until one is refused (the rest are not enqueued); an id
  already present counts as accepted. The records are set when the first item is accepted.

  KEYS[1..QUEUE_WIDTH]     the queue block
  KEYS[QUEUE_WIDTH + 1]    due
  KEYS[QUEUE_WIDTH + 2..]  the r record keys
  ARGV[1]   wake channel
  ARGV[2]   queue name
  ARGV[3]   delayMs
  ARGV[4]   maxPending ('' = none)
  ARGV[5]   maxTotal ('' = none)
  ARGV[6]   record count r
  ARGV[7..] the r record values, then (id, payload) per item
  Returns {accepted} or {accepted, reason ('pending' | 'total'), count}.
]]
--- @include "now-ms"
--- @include "qkeys"
--- @include "notify"
--- @include "recover"
--- @include "enqueue-items"
--- @include "write-records"

local q = qkeys(1)
local due = KEYS[QUEUE_WIDTH + 1]
local now = now_ms()
local r = tonumber(ARGV[6])
local before = redis.call('LLEN', q.ready)
recover(q, now)
local result = enqueue_items(q, due, ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], 7 + r, #ARGV, now)
write_records(result, QUEUE_WIDTH + 1, 6, r)
notify(q, before, ARGV[1], ARGV[2])
return result
