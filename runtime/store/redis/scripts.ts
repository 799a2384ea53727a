/**
 * The Lua scripts of the Redis store. Each store call that reads and writes more than one key runs
 * as one of these (atomically, on the server), registered with ioredis `defineCommand` (EVALSHA,
 * falling back to EVAL after a server restart empties the script cache).
 *
 * Time is the server's (`TIME`), not the agent's: lease deadlines and delays are compared across
 * agents whose clocks may differ, and key TTLs (PX) are server-side anyway. Scripts that report a
 * time report a delta ("due in N ms"), so callers never mix clocks.
 *
 * A queue is a block of {@link QUEUE_PARTS} keys, passed in that order in KEYS:
 * - `ready`   LIST  of claimable ids, claim order (release front: LPUSH, back: RPUSH).
 * - `delayed` ZSET  id -> time it becomes claimable (ms).
 * - `claimed` ZSET  id -> lease deadline (ms).
 * - `payload` HASH  id -> payload; an id is in the queue exactly while it has a payload here.
 * - `claims`  HASH  id -> how many times it was claimed (a claim's `deliveries` is this minus 1).
 * - `fence`   HASH  id -> fence of the current claim (claimed items only).
 * - `owner`   HASH  id -> owner of the current claim (claimed items only).
 * - `front`   HASH  id -> 1 for delayed items that go to the front when their delay ends.
 * Global keys: `seq` (the fence / lock token counter) and `due` (ZSET queue name -> earliest
 * delay end or lease deadline, possibly early, never late), which the periodic sweep reads.
 *
 * Wake-ups: a script that makes a queue's ready list go from empty to non-empty publishes the
 * queue's name on the wake channel; blocked claimers (in every agent) try again. A claimer that
 * found nothing was looking at an empty list, so the next item to arrive publishes.
 */

export const QUEUE_PARTS = ["ready", "delayed", "claimed", "payload", "claims", "fence", "owner", "front"] as const;

/** Items moved per zset per call by the recovery step (the rest on the next call or sweep). */
export const RECOVER_LIMIT = 1000;
/** Queues handled per sweep pass. */
export const SWEEP_LIMIT = 100;

const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function qkeys(base)
  return { ready = KEYS[base], delayed = KEYS[base + 1], claimed = KEYS[base + 2], payload = KEYS[base + 3],
           claims = KEYS[base + 4], fence = KEYS[base + 5], owner = KEYS[base + 6], front = KEYS[base + 7] }
end

-- Publish a wake-up when the ready list went from empty to non-empty.
local function notify(q, before, wake, name)
  if before == 0 and redis.call('LLEN', q.ready) > 0 then redis.call('PUBLISH', wake, name) end
end

-- A claimed item goes back to the front of the ready list (its lease lapsed).
local function lapse(q, id)
  redis.call('LPUSH', q.ready, id)
  redis.call('ZREM', q.claimed, id)
  redis.call('HDEL', q.fence, id)
  redis.call('HDEL', q.owner, id)
end

-- Lapsed claims back to the front (the earliest deadline frontmost); ended delays to the back,
-- or the front for released items that asked for it.
local function recover(q, now)
  local lapsed = redis.call('ZRANGEBYSCORE', q.claimed, '-inf', now, 'LIMIT', 0, ${RECOVER_LIMIT})
  if #lapsed > 0 then
    for i = #lapsed, 1, -1 do redis.call('LPUSH', q.ready, lapsed[i]) end
    redis.call('ZREM', q.claimed, unpack(lapsed))
    redis.call('HDEL', q.fence, unpack(lapsed))
    redis.call('HDEL', q.owner, unpack(lapsed))
  end
  local ended = redis.call('ZRANGEBYSCORE', q.delayed, '-inf', now, 'LIMIT', 0, ${RECOVER_LIMIT})
  if #ended > 0 then
    local fronts = redis.call('HMGET', q.front, unpack(ended))
    for i = 1, #ended do
      if not fronts[i] then redis.call('RPUSH', q.ready, ended[i]) end
    end
    for i = #ended, 1, -1 do
      if fronts[i] then redis.call('LPUSH', q.ready, ended[i]) end
    end
    redis.call('ZREM', q.delayed, unpack(ended))
    redis.call('HDEL', q.front, unpack(ended))
  end
end

-- Milliseconds until the queue's next delay end or lease deadline; -1 when there is none.
local function next_due(q, now)
  local best = -1
  for _, z in ipairs({ q.delayed, q.claimed }) do
    local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
    if first[2] then
      local d = tonumber(first[2]) - now
      if d < 0 then d = 0 end
      if best < 0 or d < best then best = d end
    end
  end
  return best
end

-- The claim a ref names, if still held. A lapsed one is handed back here (and is not held).
local function held(q, id, fence, now, wake, name)
  local current = redis.call('HGET', q.fence, id)
  if not current or tonumber(current) ~= tonumber(fence) then return false end
  local deadline = redis.call('ZSCORE', q.claimed, id)
  if not deadline then return false end
  if tonumber(deadline) <= now then
    local before = redis.call('LLEN', q.ready)
    lapse(q, id)
    notify(q, before, wake, name)
    return false
  end
  return true
end

local function forget(q, id)
  redis.call('HDEL', q.payload, id)
  redis.call('HDEL', q.claims, id)
  redis.call('HDEL', q.fence, id)
  redis.call('HDEL', q.owner, id)
  redis.call('HDEL', q.front, id)
end
`;

function script(body: string): string {
  return `${PRELUDE}\n${body}`;
}

/**
 * KEYS: queue block, due. ARGV: wake, name, id, payload, delayMs, maxPending ('' = none), maxTotal ('' = none).
 * Returns {1} (enqueued or already present) or {0, reason, count}.
 */
export const ENQUEUE = script(`
local q = qkeys(1)
local due = KEYS[9]
local wake, name, id, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local delay = tonumber(ARGV[5])
local now = now_ms()
local before = redis.call('LLEN', q.ready)
recover(q, now)
local result = { 1 }
if redis.call('HEXISTS', q.payload, id) == 0 then
  local pending = redis.call('LLEN', q.ready) + redis.call('ZCARD', q.delayed)
  local total = pending + redis.call('ZCARD', q.claimed)
  if ARGV[6] ~= '' and pending >= tonumber(ARGV[6]) then
    result = { 0, 'pending', pending }
  elseif ARGV[7] ~= '' and total >= tonumber(ARGV[7]) then
    result = { 0, 'total', total }
  else
    redis.call('HSET', q.payload, id, payload)
    if delay > 0 then
      local at = now + delay
      redis.call('ZADD', q.delayed, at, id)
      redis.call('ZADD', due, 'LT', at, name)
    else
      redis.call('RPUSH', q.ready, id)
    end
  end
end
notify(q, before, wake, name)
return result
`);

/**
 * KEYS: seq, due, then one queue block per queue. ARGV: wake, owner, leaseMs, max, then the queue names.
 * Returns {index, 0, id, payload, fence, deliveries, ...} for the first queue with ready items
 * (1-based index), or {0, dueInMs} when none had any (dueInMs: -1 when nothing is delayed or claimed).
 */
export const CLAIM = script(`
local seq, due = KEYS[1], KEYS[2]
local wake, owner = ARGV[1], ARGV[2]
local lease, max = tonumber(ARGV[3]), tonumber(ARGV[4])
local n = (#KEYS - 2) / 8
local now = now_ms()
local qs, before = {}, {}
for i = 1, n do
  qs[i] = qkeys(3 + (i - 1) * 8)
  before[i] = redis.call('LLEN', qs[i].ready)
  recover(qs[i], now)
end
local out = nil
for i = 1, n do
  local q = qs[i]
  local ids = redis.call('LPOP', q.ready, max)
  if ids then
    local last = redis.call('INCRBY', seq, #ids)
    local first = last - #ids + 1
    local deadline = now + lease
    local fences, owners, leases = {}, {}, {}
    out = { i, 0 }
    for j, id in ipairs(ids) do
      local fence = first + j - 1
      local claims = redis.call('HINCRBY', q.claims, id, 1)
      fences[#fences + 1] = id
      fences[#fences + 1] = fence
      owners[#owners + 1] = id
      owners[#owners + 1] = owner
      leases[#leases + 1] = deadline
      leases[#leases + 1] = id
      out[#out + 1] = id
      out[#out + 1] = redis.call('HGET', q.payload, id)
      out[#out + 1] = fence
      out[#out + 1] = claims - 1
    end
    redis.call('HSET', q.fence, unpack(fences))
    redis.call('HSET', q.owner, unpack(owners))
    redis.call('ZADD', q.claimed, unpack(leases))
    redis.call('ZADD', due, 'LT', deadline, ARGV[4 + i])
    break
  end
end
for i = 1, n do notify(qs[i], before[i], wake, ARGV[4 + i]) end
if out then return out end
local best = -1
for i = 1, n do
  local d = next_due(qs[i], now)
  if d >= 0 and (best < 0 or d < best) then best = d end
end
return { 0, best }
`);

/**
 * KEYS: one queue block per queue. ARGV: wake, leaseMs, queue count, the queue names, then
 * (queue index, id, fence) per claim. Returns 1 / 0 per claim.
 */
export const RENEW = script(`
local wake = ARGV[1]
local lease, n = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local out = {}
local i = 4 + n
while i <= #ARGV do
  local qi = tonumber(ARGV[i])
  local q = qkeys(1 + (qi - 1) * 8)
  local id, fence = ARGV[i + 1], ARGV[i + 2]
  if held(q, id, fence, now, wake, ARGV[3 + qi]) then
    redis.call('ZADD', q.claimed, 'XX', now + lease, id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  i = i + 3
end
return out
`);

/** KEYS: queue block. ARGV: wake, name, id, fence. Returns 1 when completed, 0 when stale. */
export const COMPLETE = script(`
local q = qkeys(1)
local id = ARGV[3]
if not held(q, id, ARGV[4], now_ms(), ARGV[1], ARGV[2]) then return 0 end
redis.call('ZREM', q.claimed, id)
forget(q, id)
return 1
`);

/**
 * KEYS: queue block, due. ARGV: wake, name, id, fence, delayMs, front (1/0), hasPayload (1/0), payload.
 * Returns 1 when released, 0 when stale.
 */
export const RELEASE = script(`
local q = qkeys(1)
local due = KEYS[9]
local wake, name, id = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
if not held(q, id, ARGV[4], now, wake, name) then return 0 end
local before = redis.call('LLEN', q.ready)
redis.call('ZREM', q.claimed, id)
redis.call('HDEL', q.fence, id)
redis.call('HDEL', q.owner, id)
if ARGV[7] == '1' then redis.call('HSET', q.payload, id, ARGV[8]) end
local delay = tonumber(ARGV[5])
local front = ARGV[6] == '1'
if delay > 0 then
  local at = now + delay
  redis.call('ZADD', q.delayed, at, id)
  if front then redis.call('HSET', q.front, id, 1) else redis.call('HDEL', q.front, id) end
  redis.call('ZADD', due, 'LT', at, name)
elseif front then
  redis.call('LPUSH', q.ready, id)
else
  redis.call('RPUSH', q.ready, id)
end
notify(q, before, wake, name)
return 1
`);

/** KEYS: queue block. ARGV: wake, name, id. Returns 'pending', 'claimed' or nil. */
export const REMOVE = script(`
local q = qkeys(1)
local id = ARGV[3]
local before = redis.call('LLEN', q.ready)
recover(q, now_ms())
notify(q, before, ARGV[1], ARGV[2])
if redis.call('HEXISTS', q.payload, id) == 0 then return false end
local where = 'pending'
if redis.call('ZREM', q.claimed, id) == 1 then
  where = 'claimed'
elseif redis.call('ZREM', q.delayed, id) == 0 then
  redis.call('LREM', q.ready, 1, id)
end
forget(q, id)
return where
`);

/** KEYS: queue block. ARGV: wake, name. Returns {pending, claimed, delayed}. */
export const STATS = script(`
local q = qkeys(1)
local before = redis.call('LLEN', q.ready)
recover(q, now_ms())
notify(q, before, ARGV[1], ARGV[2])
local delayed = redis.call('ZCARD', q.delayed)
return { redis.call('LLEN', q.ready) + delayed, redis.call('ZCARD', q.claimed), delayed }
`);

/** KEYS: queue block, due. ARGV: name. Returns how many items were dropped. */
export const DROP_QUEUE = script(`
local q = qkeys(1)
local count = redis.call('HLEN', q.payload)
redis.call('DEL', q.ready, q.delayed, q.claimed, q.payload, q.claims, q.fence, q.owner, q.front)
redis.call('ZREM', KEYS[9], ARGV[1])
return count
`);

/** KEYS: queue block. Returns {id, owner, fence, leaseLeftMs, ...} for every claimed item, by deadline. */
export const LIST_CLAIMS = script(`
local q = qkeys(1)
local now = now_ms()
local rows = redis.call('ZRANGE', q.claimed, 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  local id = rows[i]
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', q.owner, id) or ''
  out[#out + 1] = tonumber(redis.call('HGET', q.fence, id) or '0')
  out[#out + 1] = tonumber(rows[i + 1]) - now
end
return out
`);

/** KEYS: due. ARGV: limit. Returns {dueInMs of the first queue not yet due (-1: none), names of due queues...}. */
export const DUE_QUEUES = script(`
local now = now_ms()
local names = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local later = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local out = { -1 }
if later[2] then out[1] = tonumber(later[2]) - now end
for _, name in ipairs(names) do out[#out + 1] = name end
return out
`);

/**
 * KEYS: queue block, due. ARGV: wake, name. Recovers the queue, sets its exact `due` score.
 * Returns the queue's dueInMs (-1: nothing delayed or claimed).
 */
export const SWEEP_QUEUE = script(`
local q = qkeys(1)
local due = KEYS[9]
local now = now_ms()
local before = redis.call('LLEN', q.ready)
recover(q, now)
notify(q, before, ARGV[1], ARGV[2])
local d = next_due(q, now)
if d < 0 then redis.call('ZREM', due, ARGV[2]) else redis.call('ZADD', due, now + d, ARGV[2]) end
return d
`);

// ---- keys, counters, lists, locks -----------------------------------------------------------

/** KEYS: the keys. Returns their values; a list among them is a WRONGTYPE error (GET, unlike MGET). */
export const GET_MANY = `
local out = {}
for i = 1, #KEYS do out[i] = redis.call('GET', KEYS[i]) end
return out
`;

/** KEYS: key. ARGV: by, max ('' = none), min ('' = none). Returns the new value or nil when refused. */
export const INCR = `
local current = redis.call('GET', KEYS[1])
local value = 0
if current then
  local digits = string.match(current, '^%-?(%d+)$')
  if not digits or #digits > 16 then
    return redis.error_reply('KILN_INVALID incr: key does not hold an integer')
  end
  value = tonumber(current)
  if math.abs(value) > 9007199254740991 then
    return redis.error_reply('KILN_INVALID incr: key does not hold an integer')
  end
end
local nextValue = value + tonumber(ARGV[1])
if ARGV[2] ~= '' and nextValue > tonumber(ARGV[2]) then return false end
if ARGV[3] ~= '' and nextValue < tonumber(ARGV[3]) then return false end
if math.abs(nextValue) > 9007199254740991 then
  return redis.error_reply('KILN_INVALID incr: result is not a safe integer')
end
local text = string.format('%.0f', nextValue)
if current then redis.call('SET', KEYS[1], text, 'KEEPTTL') else redis.call('SET', KEYS[1], text) end
return text
`;

/** KEYS: list. ARGV: ttlMs ('' = keep), values... Returns the new length. */
export const LIST_PUSH = `
if #ARGV < 2 then return redis.call('LLEN', KEYS[1]) end
local length = redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
if ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return length
`;

/**
 * KEYS: lock, seq. ARGV: owner, ttlMs. The lock's value is "<token>:<owner>".
 * Returns the token, or nil when another owner holds the lock. The same owner re-locking extends
 * the lock and keeps its token.
 */
export const LOCK = `
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
`;

/** KEYS: lock. ARGV: owner. Returns 1 when the owner held the lock (now released), else 0. */
export const UNLOCK = `
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local sep = string.find(current, ':', 1, true)
if string.sub(current, sep + 1) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;
