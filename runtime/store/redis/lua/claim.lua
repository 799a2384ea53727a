--[[
  CLAIM: claim up to `max` ready items from the first of the queues that has any.

  KEYS[1]       seq
  KEYS[2]       due
  KEYS[3..]     one queue block (QUEUE_WIDTH keys) per queue
  ARGV[1]       wake channel
  ARGV[2]       owner
  ARGV[3]       leaseMs
  ARGV[4]       max
  ARGV[5..]     the queue names, in the order of their blocks
  Returns {index, left, id, payload, fence, deliveries, ...} for the first queue with ready items
  (1-based index; left: -2 when ready items remain in some queue, else dueInMs), or {0, dueInMs}
  when none had any (dueInMs: ms until the earliest delay end or lease deadline, -1 when nothing is
  delayed or claimed).
]]
--- @include "now-ms"
--- @include "qkeys"
--- @include "notify"
--- @include "recover"
--- @include "take"
--- @include "claim-reply"

local n = (#KEYS - 2) / QUEUE_WIDTH
local now = now_ms()
local qs, names, before = {}, {}, {}
for i = 1, n do
  qs[i] = qkeys(3 + (i - 1) * QUEUE_WIDTH)
  names[i] = ARGV[4 + i]
  before[i] = redis.call('LLEN', qs[i].ready)
  recover(qs[i], now)
end
local out = take(qs, names, KEYS[1], KEYS[2], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), now)
for i = 1, n do notify(qs[i], before[i], ARGV[1], names[i]) end
return claim_reply(out, qs, now)
