--[[
  HASH_SCAN: one HSCAN page of live fields.

  KEYS[1]  v (values)
  KEYS[2]  d (deadlines)
  ARGV[1]  cursor
  ARGV[2]  count
  Returns {nextCursor, field, value, ...}.
]]
--- @include "now-ms"
--- @include "hash-fields"

local v, d = KEYS[1], KEYS[2]
local now = now_ms()
local page = redis.call('HSCAN', v, ARGV[1], 'COUNT', tonumber(ARGV[2]))
local out = { page[1] }
local rows = page[2]
for i = 1, #rows, 2 do
  if not expired(d, rows[i], now) then
    out[#out + 1] = rows[i]
    out[#out + 1] = rows[i + 1]
  end
end
return out
