--[[
  ENQUEUE_CLAIM: enqueue, then claim for a claimer of this store that is waiting on the queue (the
  agent that takes a call and has room runs it, with no wake-up round trip). The items and records
  go in as ENQUEUE puts them (no delay); the claim runs as CLAIM runs it.

  KEYS[1]      seq
  KEYS[2]      due
  KEYS[3..]    one queue block (QUEUE_WIDTH keys) per claimer queue, then the r record keys
  ARGV[1]      wake channel
  ARGV[2]      owner
  ARGV[3]      leaseMs
  ARGV[4]      max
  ARGV[5]      index of the enqueued queue among the claimer's (1-based)
  ARGV[6]      maxPending ('' = none)
  ARGV[7]      maxTotal ('' = none)
  ARGV[8]      item count
  ARGV[9]      record count r
  ARGV[10..]   (id, payload) per item, the queue names, then the r record values
  Returns {enqueue reply, claim reply}, as ENQUEUE and CLAIM return them.
]]
--- @include "now-ms"
--- @include "qkeys"
--- @include "notify"
--- @include "recover"
--- @include "enqueue-items"
--- @include "write-records"
--- @include "take"
--- @include "claim-reply"

local items, r = tonumber(ARGV[8]), tonumber(ARGV[9])
local n = (#KEYS - 2 - r) / QUEUE_WIDTH
local first_name = 10 + 2 * items
local now = now_ms()
local qs, names, before = {}, {}, {}
for i = 1, n do
  qs[i] = qkeys(3 + (i - 1) * QUEUE_WIDTH)
  names[i] = ARGV[first_name + i - 1]
  before[i] = redis.call('LLEN', qs[i].ready)
  recover(qs[i], now)
end
local e = tonumber(ARGV[5])
local enqueued = enqueue_items(qs[e], KEYS[2], names[e], 0, ARGV[6], ARGV[7], 10, first_name - 1, now)
write_records(enqueued, 2 + QUEUE_WIDTH * n, first_name + n - 1, r)
local out = take(qs, names, KEYS[1], KEYS[2], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), now)
for i = 1, n do notify(qs[i], before[i], ARGV[1], names[i]) end
return { enqueued, claim_reply(out, qs, now) }
