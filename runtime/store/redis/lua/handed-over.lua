--[[
  HANDED_OVER: whether a hand-over whose ENQUEUE_TAKE reply was lost did run.

  KEYS[1..QUEUE_WIDTH]  the queue block
  ARGV[1]  id
  ARGV[2]  owner
  Returns the fence of the claim when `owner` holds it on its first delivery, else 0.
]]
--- @include "qkeys"

local q = qkeys(1)
local id = ARGV[1]
if redis.call('HGET', q.owner, id) ~= ARGV[2] or redis.call('HGET', q.claims, id) ~= '1' then return 0 end
return tonumber(redis.call('HGET', q.fence, id))
