--[[
  HASH_GET: one field's value; with idleMs, its inactivity deadline moves to now + idleMs (never
  past its fixed TTL).

  KEYS[1]  v (values)
  KEYS[2]  d (deadlines)
  KEYS[3]  x (fixed TTL ends)
  ARGV[1]  field
  ARGV[2]  idleMs ('' = no refresh)
  Returns the value, or nil (absent or expired).
]]
--- @include "now-ms"
--- @include "hash-fields"

local v, d, x = KEYS[1], KEYS[2], KEYS[3]
local field = ARGV[1]
local now = now_ms()
if expired(d, field, now) then
  drop_field(v, d, x, field)
  key_expiry(v, d, x)
  return false
end
local value = redis.call('HGET', v, field)
if not value then return false end
if ARGV[2] ~= '' then
  local deadline = now + tonumber(ARGV[2])
  local fixed = redis.call('HGET', x, field)
  if fixed and tonumber(fixed) < deadline then deadline = tonumber(fixed) end
  redis.call('ZADD', d, deadline, field)
  key_expiry(v, d, x)
end
return value
