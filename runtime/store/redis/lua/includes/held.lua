--[[
  held(q, id, fence, now, wake, name): whether the claim a ref names (id, fence) is still held.
  A lapsed one is handed back to the ready list here (and is not held).
]]
--- @include "lapse"
--- @include "notify"

local function held(q, id, fence, now, wake, name)
  local current = redis.call('HGET', q.fence, id)
  if not current or tonumber(current) ~= tonumber(fence) then return false end
  local deadline = redis.call('ZSCORE', q.claimed, id)
  if not deadline then return false end
  if tonumber(deadline) <= now then
    local before = redis.call('LLEN', q.ready)
    lapse(q, id)
    notify(q, before, wake, name)
    return false
  end
  return true
end
