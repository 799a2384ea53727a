--[[
  apply_effects(k, a, last): the writes of an `Effects` (store.ts) as the store encodes them:
  effect keys in KEYS from index `k`, ops in ARGV from index `a` to `last`, each op a letter and
  its arguments:
  - g value ttl('' = none)     guard: SET NX (PX); when the key exists, stop and return 0
  - p ttl('' = keep) n v1..vn  RPUSH the values, then PEXPIRE
  - i by min('' = none)        add to an integer key (KEEPTTL), skipped below min
  - x ttl                      PEXPIRE an existing key
  - m channel message          PUBLISH (takes no key)
  Returns 1 when everything was applied.
]]
local function apply_effects(k, a, last)
  while a <= last do
    local op = ARGV[a]
    if op == 'g' then
      local set
      if ARGV[a + 2] == '' then set = redis.call('SET', KEYS[k], ARGV[a + 1], 'NX')
      else set = redis.call('SET', KEYS[k], ARGV[a + 1], 'PX', ARGV[a + 2], 'NX') end
      if not set then return 0 end
      k, a = k + 1, a + 3
    elseif op == 'p' then
      local n = tonumber(ARGV[a + 2])
      for i = a + 3, a + 2 + n, 1000 do redis.call('RPUSH', KEYS[k], unpack(ARGV, i, math.min(i + 999, a + 2 + n))) end
      if ARGV[a + 1] ~= '' and redis.call('EXISTS', KEYS[k]) == 1 then redis.call('PEXPIRE', KEYS[k], ARGV[a + 1]) end
      k, a = k + 1, a + 3 + n
    elseif op == 'i' then
      local current = redis.call('GET', KEYS[k])
      local value = 0
      if current then
        value = tonumber(string.match(current, '^%-?%d+$') or 'x')
        if not value then return redis.error_reply('KILN_INVALID incr: key does not hold an integer') end
      end
      local nextValue = value + tonumber(ARGV[a + 1])
      if ARGV[a + 2] == '' or nextValue >= tonumber(ARGV[a + 2]) then
        local text = string.format('%.0f', nextValue)
        if current then redis.call('SET', KEYS[k], text, 'KEEPTTL') else redis.call('SET', KEYS[k], text) end
      end
      k, a = k + 1, a + 3
    elseif op == 'x' then
      redis.call('PEXPIRE', KEYS[k], ARGV[a + 1])
      k, a = k + 1, a + 2
    elseif op == 'm' then
      redis.call('PUBLISH', ARGV[a + 1], ARGV[a + 2])
      a = a + 3
    else
      return redis.error_reply('KILN_INVALID effects: unknown op ' .. tostring(op))
    end
  end
  return 1
end
