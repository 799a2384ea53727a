--[[
  ENQUEUE_TAKE: an eager hand-over (EnqueueOptions.eager). The item goes straight to claimed, held
  by the claimer that is already running it, without passing through the ready list (so no cap
  applies: it never waits). An id already in the queue counts as accepted, as in ENQUEUE: only the
  records are written.

  KEYS[1]                  seq
  KEYS[2]                  due
  KEYS[3..QUEUE_WIDTH + 2] the queue block
  KEYS[QUEUE_WIDTH + 3..]  the r record keys
  ARGV[1]   owner
  ARGV[2]   leaseMs
  ARGV[3]   queue name
  ARGV[4]   id
  ARGV[5]   payload
  ARGV[6]   record count r
  ARGV[7..] the r record values
  Returns the claim's fence, or 0 when the id is already in the queue.
]]
--- @include "now-ms"
--- @include "qkeys"

local q = qkeys(3)
local id = ARGV[4]
local r = tonumber(ARGV[6])
local records = 2 + QUEUE_WIDTH
if redis.call('HEXISTS', q.payload, id) == 1 then
  for j = 1, r do redis.call('SET', KEYS[records + j], ARGV[6 + j]) end
  return 0
end
local deadline = now_ms() + tonumber(ARGV[2])
local fence = redis.call('INCR', KEYS[1])
redis.call('HSET', q.payload, id, ARGV[5])
redis.call('HSET', q.claims, id, 1)
redis.call('HSET', q.fence, id, fence)
redis.call('HSET', q.owner, id, ARGV[1])
redis.call('ZADD', q.claimed, deadline, id)
redis.call('ZADD', KEYS[2], 'LT', deadline, ARGV[3])
for j = 1, r do redis.call('SET', KEYS[records + j], ARGV[6 + j]) end
return fence
