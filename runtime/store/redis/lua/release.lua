--[[
  RELEASE: give a claim back to its queue (now, or after a delay), when it is still held.

  KEYS[1..QUEUE_WIDTH]   the queue block
  KEYS[QUEUE_WIDTH + 1]  due
  ARGV[1]  wake channel
  ARGV[2]  queue name
  ARGV[3]  id
  ARGV[4]  fence
  ARGV[5]  delayMs
  ARGV[6]  front (1/0)
  ARGV[7]  hasPayload (1/0)
  ARGV[8]  payload (replaces the item's when hasPayload is 1)
  Returns 1 when released, 0 when stale (not held).
]]
--- @include "now-ms"
--- @include "qkeys"
--- @include "notify"
--- @include "held"

local q = qkeys(1)
local due = KEYS[QUEUE_WIDTH + 1]
local wake, name, id = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
if not held(q, id, ARGV[4], now, wake, name) then return 0 end
local before = redis.call('LLEN', q.ready)
redis.call('ZREM', q.claimed, id)
redis.call('HDEL', q.fence, id)
redis.call('HDEL', q.owner, id)
if ARGV[7] == '1' then redis.call('HSET', q.payload, id, ARGV[8]) end
local delay = tonumber(ARGV[5])
local front = ARGV[6] == '1'
if delay > 0 then
  local at = now + delay
  redis.call('ZADD', q.delayed, at, id)
  if front then redis.call('HSET', q.front, id, 1) else redis.call('HDEL', q.front, id) end
  redis.call('ZADD', due, 'LT', at, name)
elseif front then
  redis.call('LPUSH', q.ready, id)
else
  redis.call('RPUSH', q.ready, id)
end
notify(q, before, wake, name)
return 1
