--[[
  enqueue_items(q, due, name, delay, maxPending, maxTotal, from, to, now): the (id, payload)
  pairs from ARGV[from] to ARGV[to], in order until one is refused. Returns {accepted} or
  {accepted, reason, count}.
]]
--- @include "enqueue-into"

local function enqueue_items(q, due, name, delay, maxPending, maxTotal, from, to, now)
  local accepted = 0
  for i = from, to, 2 do
    local result = enqueue_into(q, due, name, ARGV[i], ARGV[i + 1], delay, maxPending, maxTotal, now)
    if result[1] == 0 then return { accepted, result[2], result[3] } end
    accepted = accepted + 1
  end
  return { accepted }
end
