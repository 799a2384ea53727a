--[[
  Field expiry of a hash (dict) block: `v` HASH field -> value; `d` ZSET field -> deadline (ms,
  server time: the earlier of its fixed TTL and its inactivity deadline; fields without one are
  not in it); `x` HASH field -> end of its fixed TTL. Redis 7.0 has no per-field expiry (HPEXPIRE
  is 7.4), so every script drops the fields whose deadline passed (at most HASH_PURGE_LIMIT per
  call) and counts the rest as absent; the three keys carry a key expiry at the latest field
  deadline when every field has one, so a dict nobody touches again disappears on its own.
  - purge(v, d, x, now): drop fields past their deadline (a bounded number).
  - expired(d, field, now): whether the field is past its deadline.
  - live_count(v, d, now): live fields (all but those past their deadline and not dropped yet).
  - drop_field(v, d, x, field): remove one field.
  - key_expiry(v, d, x): the keys expire with the latest field deadline when every field has one;
    else they persist (an empty hash is deleted).
]]
local function purge(v, d, x, now)
  local gone = redis.call('ZRANGEBYSCORE', d, '-inf', now, 'LIMIT', 0, HASH_PURGE_LIMIT)
  if #gone > 0 then
    redis.call('HDEL', v, unpack(gone))
    redis.call('HDEL', x, unpack(gone))
    redis.call('ZREM', d, unpack(gone))
  end
end

local function expired(d, field, now)
  local at = redis.call('ZSCORE', d, field)
  return at and tonumber(at) <= now
end

local function live_count(v, d, now)
  return redis.call('HLEN', v) - redis.call('ZCOUNT', d, '-inf', now)
end

local function drop_field(v, d, x, field)
  redis.call('HDEL', v, field)
  redis.call('HDEL', x, field)
  redis.call('ZREM', d, field)
end

local function key_expiry(v, d, x)
  local n = redis.call('HLEN', v)
  if n == 0 then
    redis.call('DEL', v, d, x)
    return
  end
  if redis.call('ZCARD', d) == n then
    local last = redis.call('ZRANGE', d, -1, -1, 'WITHSCORES')
    local at = math.floor(tonumber(last[2])) + 1
    redis.call('PEXPIREAT', v, at)
    redis.call('PEXPIREAT', d, at)
    redis.call('PEXPIREAT', x, at)
  else
    redis.call('PERSIST', v)
    redis.call('PERSIST', d)
    redis.call('PERSIST', x)
  end
end
