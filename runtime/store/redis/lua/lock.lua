--[[
  LOCK: take a lock, or extend it when the same owner holds it (keeping its token). The lock's
  value is "<token>:<owner>".

  KEYS[1]  the lock
  KEYS[2]  seq
  ARGV[1]  owner
  ARGV[2]  ttlMs
  Returns the token, or nil when another owner holds the lock.
]]
local current = redis.call('GET', KEYS[1])
if current then
  local sep = string.find(current, ':', 1, true)
  if string.sub(current, sep + 1) ~= ARGV[1] then return false end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(string.sub(current, 1, sep - 1))
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token
