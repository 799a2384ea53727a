--[[
  now_ms(): the server's clock in ms. Every script decides on Redis's time (TIME), so the agents'
  clocks may drift.
]]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
