--[[
  recover(q, now): lapsed claims back to the front of the ready list (the earliest deadline
  frontmost); ended delays to the back, or to the front for released items that asked for it.
  At most RECOVER_LIMIT of each per call (the rest on the next call or sweep).
]]
local function recover(q, now)
  local lapsed = redis.call('ZRANGEBYSCORE', q.claimed, '-inf', now, 'LIMIT', 0, RECOVER_LIMIT)
  if #lapsed > 0 then
    for i = #lapsed, 1, -1 do redis.call('LPUSH', q.ready, lapsed[i]) end
    redis.call('ZREM', q.claimed, unpack(lapsed))
    redis.call('HDEL', q.fence, unpack(lapsed))
    redis.call('HDEL', q.owner, unpack(lapsed))
  end
  local ended = redis.call('ZRANGEBYSCORE', q.delayed, '-inf', now, 'LIMIT', 0, RECOVER_LIMIT)
  if #ended > 0 then
    local fronts = redis.call('HMGET', q.front, unpack(ended))
    for i = 1, #ended do
      if not fronts[i] then redis.call('RPUSH', q.ready, ended[i]) end
    end
    for i = #ended, 1, -1 do
      if fronts[i] then redis.call('LPUSH', q.ready, ended[i]) end
    end
    redis.call('ZREM', q.delayed, unpack(ended))
    redis.call('HDEL', q.front, unpack(ended))
  end
end
