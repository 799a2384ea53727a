--[[
  RENEW: extend the leases of the claims still held.

  KEYS[1..]  one queue block (QUEUE_WIDTH keys) per queue
  ARGV[1]    wake channel
  ARGV[2]    leaseMs
  ARGV[3]    queue count n
  ARGV[4..]  the n queue names, then (queue index (1-based), id, fence) per claim
  Returns 1 (renewed) or 0 (not held) per claim.
]]
--- @include "now-ms"
--- @include "qkeys"
--- @include "held"

local wake = ARGV[1]
local lease, n = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local out = {}
local i = 4 + n
while i <= #ARGV do
  local qi = tonumber(ARGV[i])
  local q = qkeys(1 + (qi - 1) * QUEUE_WIDTH)
  local id, fence = ARGV[i + 1], ARGV[i + 2]
  if held(q, id, fence, now, wake, ARGV[3 + qi]) then
    redis.call('ZADD', q.claimed, 'XX', now + lease, id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  i = i + 3
end
return out
