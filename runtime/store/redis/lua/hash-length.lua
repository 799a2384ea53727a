--[[
  HASH_LENGTH: how many live fields a hash holds.

  KEYS[1]  v (values)
  KEYS[2]  d (deadlines)
  KEYS[3]  x (fixed TTL ends)
  ARGV: none
  Returns the number of live fields.
]]
--- @include "now-ms"
--- @include "hash-fields"

local v, d, x = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
purge(v, d, x, now)
return live_count(v, d, now)
