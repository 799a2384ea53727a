--[[
  enqueue_into(q, due, name, id, payload, delay, maxPending, maxTotal, now): add one item to the
  queue (after `recover`). maxPending / maxTotal: '' = no cap. Returns {1} (enqueued, or the id
  was already present) or {0, reason ('pending' | 'total'), count}.
]]
local function enqueue_into(q, due, name, id, payload, delay, maxPending, maxTotal, now)
  if redis.call('HEXISTS', q.payload, id) == 1 then return { 1 } end
  local pending = redis.call('LLEN', q.ready) + redis.call('ZCARD', q.delayed)
  local total = pending + redis.call('ZCARD', q.claimed)
  if maxPending ~= '' and pending >= tonumber(maxPending) then return { 0, 'pending', pending } end
  if maxTotal ~= '' and total >= tonumber(maxTotal) then return { 0, 'total', total } end
  redis.call('HSET', q.payload, id, payload)
  if delay > 0 then
    local at = now + delay
    redis.call('ZADD', q.delayed, at, id)
    redis.call('ZADD', due, 'LT', at, name)
  else
    redis.call('RPUSH', q.ready, id)
  end
  return { 1 }
end
