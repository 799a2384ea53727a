--[[
  write_records(result, k, a, r): SET the r records (keys from KEYS[k + 1], values from
  ARGV[a + 1]) when an enqueue (its enqueue_items result) accepted its first item.
]]
local function write_records(result, k, a, r)
  if result[1] < 1 then return end
  for j = 1, r do redis.call('SET', KEYS[k + j], ARGV[a + j]) end
end
