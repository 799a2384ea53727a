--[[
  HASH_SET: write fields (a field given twice: the last value wins, or the first with ifAbsent).

  KEYS[1]    v (values)
  KEYS[2]    d (deadlines)
  KEYS[3]    x (fixed TTL ends)
  ARGV[1]    ifAbsent (1/0)
  ARGV[2]    ttlMs ('' = none)
  ARGV[3]    idleMs ('' = none)
  ARGV[4]    maxFields ('' = none)
  ARGV[5..]  field, value pairs
  Returns {1, written} or {0, liveCount} (refused by maxFields, nothing written).
]]
--- @include "now-ms"
--- @include "hash-fields"

local v, d, x = KEYS[1], KEYS[2], KEYS[3]
local ifAbsent = ARGV[1] == '1'
local now = now_ms()
purge(v, d, x, now)
local chosen, order, added = {}, {}, 0
for i = 5, #ARGV, 2 do
  local field = ARGV[i]
  if not (ifAbsent and chosen[field]) then
    local live = redis.call('HEXISTS', v, field) == 1 and not expired(d, field, now)
    if not (ifAbsent and live) then
      if not live and not chosen[field] then added = added + 1 end
      if not chosen[field] then order[#order + 1] = field end
      chosen[field] = ARGV[i + 1]
    end
  end
end
local count = live_count(v, d, now)
if ARGV[4] ~= '' and count + added > tonumber(ARGV[4]) then return { 0, count } end
if #order == 0 then return { 1, 0 } end
local fixed = nil
if ARGV[2] ~= '' then fixed = now + tonumber(ARGV[2]) end
local deadline = fixed
if ARGV[3] ~= '' then
  local idle = now + tonumber(ARGV[3])
  if not deadline or idle < deadline then deadline = idle end
end
for _, field in ipairs(order) do
  redis.call('HSET', v, field, chosen[field])
  if deadline then redis.call('ZADD', d, deadline, field) else redis.call('ZREM', d, field) end
  if fixed then redis.call('HSET', x, field, fixed) else redis.call('HDEL', x, field) end
end
key_expiry(v, d, x)
return { 1, #order }
