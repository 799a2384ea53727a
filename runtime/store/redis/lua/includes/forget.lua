--[[
  forget(q, id): drop everything the queue keeps about `id` but its place in the ready list and
  the zsets (the caller removes it from those).
]]
local function forget(q, id)
  redis.call('HDEL', q.payload, id)
  redis.call('HDEL', q.claims, id)
  redis.call('HDEL', q.fence, id)
  redis.call('HDEL', q.owner, id)
  redis.call('HDEL', q.front, id)
end
