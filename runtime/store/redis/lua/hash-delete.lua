--[[
  HASH_DELETE: remove one field.

  KEYS[1]  v (values)
  KEYS[2]  d (deadlines)
  KEYS[3]  x (fixed TTL ends)
  ARGV[1]  field
  Returns the removed value, or nil (absent or expired).
]]
--- @include "now-ms"
--- @include "hash-fields"

local v, d, x = KEYS[1], KEYS[2], KEYS[3]
local field = ARGV[1]
local now = now_ms()
local value = redis.call('HGET', v, field)
if value and expired(d, field, now) then value = false end
drop_field(v, d, x, field)
key_expiry(v, d, x)
return value
