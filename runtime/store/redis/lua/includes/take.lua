--[[
  take(qs, names, seq, due, owner, lease, max, now): claim up to `max` ready items from the first
  of the queues `qs` (named `names`) that has any, for `owner`, for `lease` ms. Returns
  {index, 0, id, payload, fence, deliveries, ...} (index: 1-based, of the queue), or nil when none
  had any.
]]
local function take(qs, names, seq, due, owner, lease, max, now)
  for i = 1, #qs do
    local q = qs[i]
    local ids = redis.call('LPOP', q.ready, max)
    if ids then
      local last = redis.call('INCRBY', seq, #ids)
      local first = last - #ids + 1
      local deadline = now + lease
      local fences, owners, leases = {}, {}, {}
      local out = { i, 0 }
      for j, id in ipairs(ids) do
        local fence = first + j - 1
        local claims = redis.call('HINCRBY', q.claims, id, 1)
        fences[#fences + 1] = id
        fences[#fences + 1] = fence
        owners[#owners + 1] = id
        owners[#owners + 1] = owner
        leases[#leases + 1] = deadline
        leases[#leases + 1] = id
        out[#out + 1] = id
        out[#out + 1] = redis.call('HGET', q.payload, id)
        out[#out + 1] = fence
        out[#out + 1] = claims - 1
      end
      redis.call('HSET', q.fence, unpack(fences))
      redis.call('HSET', q.owner, unpack(owners))
      redis.call('ZADD', q.claimed, unpack(leases))
      redis.call('ZADD', due, 'LT', deadline, names[i])
      return out
    end
  end
  return nil
end
