--[[
  next_due(q, now): ms until the queue's next delay end or lease deadline; -1 when there is none.
]]
local function next_due(q, now)
  local best = -1
  for _, z in ipairs({ q.delayed, q.claimed }) do
    local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
    if first[2] then
      local d = tonumber(first[2]) - now
      if d < 0 then d = 0 end
      if best < 0 or d < best then best = d end
    end
  end
  return best
end
