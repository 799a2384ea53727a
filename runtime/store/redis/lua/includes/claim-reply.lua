--[[
  claim_reply(out, qs, now): a claim's reply from take()'s `out`. In place of take()'s 0: -2 when
  some queue still has ready items, else the dueInMs below (the claimer may wait for a wake-up
  instead of asking again). When take() took none: {0, dueInMs}. dueInMs: ms until the earliest
  delay end or lease deadline among the queues, -1 when nothing is delayed or claimed.
]]
--- @include "next-due"

local function nothing_ready(qs, now)
  local best = -1
  for i = 1, #qs do
    local d = next_due(qs[i], now)
    if d >= 0 and (best < 0 or d < best) then best = d end
  end
  return { 0, best }
end

local function claim_reply(out, qs, now)
  if not out then return nothing_ready(qs, now) end
  for i = 1, #qs do
    if redis.call('LLEN', qs[i].ready) > 0 then out[2] = -2 return out end
  end
  out[2] = nothing_ready(qs, now)[2]
  return out
end
