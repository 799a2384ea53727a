--[[
  SETTLE: complete claims and apply each one's effects (see apply-effects), claim by claim.

  KEYS[1..]  one queue block (QUEUE_WIDTH keys) per queue involved, then each claim's effect keys
             in turn
  ARGV[1]    wake channel
  ARGV[2]    queue count nq
  ARGV[3..]  the nq queue names, then per claim: its queue's index (1-based), id, fence, effect
             key count, effect arg count, the effect args
  Returns per claim 1 (completed, effects applied), 2 (completed, their guard stopped them) or 0
  (stale: nothing written).
]]
--- @include "now-ms"
--- @include "qkeys"
--- @include "held"
--- @include "forget"
--- @include "apply-effects"

local wake = ARGV[1]
local nq = tonumber(ARGV[2])
local now = now_ms()
local out = {}
local k, a = 1 + QUEUE_WIDTH * nq, 3 + nq
while a <= #ARGV do
  local qi, id, fence = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2]
  local nkeys, nargs = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local q = qkeys(1 + QUEUE_WIDTH * (qi - 1))
  local first = a + 5
  if held(q, id, fence, now, wake, ARGV[2 + qi]) then
    redis.call('ZREM', q.claimed, id)
    forget(q, id)
    if apply_effects(k, first, first + nargs - 1) == 1 then out[#out + 1] = 1 else out[#out + 1] = 2 end
  else
    out[#out + 1] = 0
  end
  k = k + nkeys
  a = first + nargs
end
return out
