--[[
  LIST_CLAIMS: every claim held on a queue, by lease deadline.

  KEYS[1..QUEUE_WIDTH]  the queue block
  ARGV: none
  Returns {id, owner, fence, leaseLeftMs, ...} (leaseLeftMs <= 0: lapsed, not yet recovered).
]]
--- @include "now-ms"
--- @include "qkeys"

local q = qkeys(1)
local now = now_ms()
local rows = redis.call('ZRANGE', q.claimed, 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  local id = rows[i]
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', q.owner, id) or ''
  out[#out + 1] = tonumber(redis.call('HGET', q.fence, id) or '0')
  out[#out + 1] = tonumber(rows[i + 1]) - now
end
return out
