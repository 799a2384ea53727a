--[[
  notify(q, before, wake, name): publish `name` on the wake channel when the queue's ready list
  went from empty (`before`, its length when the script started) to non-empty.
]]
local function notify(q, before, wake, name)
  if before == 0 and redis.call('LLEN', q.ready) > 0 then redis.call('PUBLISH', wake, name) end
end
