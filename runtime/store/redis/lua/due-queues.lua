--[[
  DUE_QUEUES: the queues whose earliest delay end or lease deadline has come (for the sweep).

  KEYS[1]  due
  ARGV[1]  limit (most names returned)
  Returns {dueInMs of the first queue not yet due (-1: none), names of due queues...}.
]]
--- @include "now-ms"

local now = now_ms()
local names = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local later = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local out = { -1 }
if later[2] then out[1] = tonumber(later[2]) - now end
for _, name in ipairs(names) do out[#out + 1] = name end
return out
