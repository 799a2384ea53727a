--[[
  HASH_DROP: delete a hash.

  KEYS[1]  v (values)
  KEYS[2]  d (deadlines)
  KEYS[3]  x (fixed TTL ends)
  ARGV: none
  Returns how many live fields it had.
]]
--- @include "now-ms"
--- @include "hash-fields"

local v, d, x = KEYS[1], KEYS[2], KEYS[3]
local count = live_count(v, d, now_ms())
redis.call('DEL', v, d, x)
return count
