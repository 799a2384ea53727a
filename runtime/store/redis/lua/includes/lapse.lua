--[[
  lapse(q, id): a claimed item goes back to the front of the ready list (its lease lapsed).
]]
local function lapse(q, id)
  redis.call('LPUSH', q.ready, id)
  redis.call('ZREM', q.claimed, id)
  redis.call('HDEL', q.fence, id)
  redis.call('HDEL', q.owner, id)
end
