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

export const QUEUE_PARTS = [
  "ready",
  "delayed",
  "claimed",
  "payload",
  "claims",
  "fence",
  "owner",
  "front",
] as const;

/** Items moved per zset per call by the recovery step (the rest on the next call or sweep). */
export const RECOVER_LIMIT = 1000;
/** Queues handled per sweep pass. */
export const SWEEP_LIMIT = 100;

/** The server's clock in ms: every script decides on Redis's time, so agents' clocks may drift. */
const NOW_MS = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

const PRELUDE = `${NOW_MS}

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
 * Queue work shared by ENQUEUE, CLAIM and ENQUEUE_CLAIM (after `recover` of the queues involved).
 * enqueue_into: {1} (enqueued or already present) or {0, reason, count}; enqueue_items: see ENQUEUE.
 * take: {index, 0, id, payload, fence, deliveries, ...} from the first of `qs` with ready items,
 * or nil when none had any.
 */
const QUEUE_OPS = `
local function enqueue_into(q, due, name, id, payload, delay, maxPending, maxTotal, now)
  if redis.call('HEXISTS', q.payload, id) == 1 then return { 1 } end
  local pending = redis.call('LLEN', q.ready) + redis.call('ZCARD', q.delayed)
  local total = pending + redis.call('ZCARD', q.claimed)
  if maxPending ~= '' and pending >= tonumber(maxPending) then return { 0, 'pending', pending } end
  if maxTotal ~= '' and total >= tonumber(maxTotal) then return { 0, 'total', total } end
  redis.call('HSET', q.payload, id, payload)
  if delay > 0 then
    local at = now + delay
    redis.call('ZADD', q.delayed, at, id)
    redis.call('ZADD', due, 'LT', at, name)
  else
    redis.call('RPUSH', q.ready, id)
  end
  return { 1 }
end

-- (id, payload) pairs from ARGV[from] to ARGV[to], in order until one is refused.
local function enqueue_items(q, due, name, delay, maxPending, maxTotal, from, to, now)
  local accepted = 0
  for i = from, to, 2 do
    local result = enqueue_into(q, due, name, ARGV[i], ARGV[i + 1], delay, maxPending, maxTotal, now)
    if result[1] == 0 then return { accepted, result[2], result[3] } end
    accepted = accepted + 1
  end
  return { accepted }
end

local function take(qs, names, seq, due, owner, lease, max, now)
  for i = 1, #qs do
    local q = qs[i]
    local ids = redis.call('LPOP', q.ready, max)
    if ids then
      local last = redis.call('INCRBY', seq, #ids)
      local first = last - #ids + 1
      local deadline = now + lease
      local fences, owners, leases = {}, {}, {}
      local out = { i, 0 }
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
      redis.call('ZADD', due, 'LT', deadline, names[i])
      return out
    end
  end
  return nil
end

-- {0, dueInMs} for a claim that found nothing (dueInMs: -1 when nothing is delayed or claimed).
local function nothing(qs, now)
  local best = -1
  for i = 1, #qs do
    local d = next_due(qs[i], now)
    if d >= 0 and (best < 0 or d < best) then best = d end
  end
  return { 0, best }
end

-- The r records (keys from KEYS[k + 1], values from ARGV[a + 1]) when an enqueue accepted its first item.
local function write_records(result, k, a, r)
  if result[1] < 1 then return end
  for j = 1, r do redis.call('SET', KEYS[k + j], ARGV[a + j]) end
end

-- A claim's reply: take()'s, with what it left in place of the 0 (-2 when some queue still has
-- ready items, else the dueInMs of nothing(): the claimer may wait for a wake-up instead of
-- asking again), or nothing() when it took none.
local function claim_reply(out, qs, now)
  if not out then return nothing(qs, now) end
  for i = 1, #qs do
    if redis.call('LLEN', qs[i].ready) > 0 then out[2] = -2 return out end
  end
  out[2] = nothing(qs, now)[2]
  return out
end
`;

/**
 * KEYS: queue block, due, then the record keys. ARGV: wake, name, delayMs, maxPending ('' = none),
 * maxTotal ('' = none), record count r, the r record values, then (id, payload) per item. Items go
 * in order until one is refused (the rest are not enqueued); the records are set when the first
 * is accepted. Returns {accepted} or {accepted, reason, count} (an id already present counts as
 * accepted).
 */
export const ENQUEUE = script(`${QUEUE_OPS}
local q = qkeys(1)
local now = now_ms()
local r = tonumber(ARGV[6])
local before = redis.call('LLEN', q.ready)
recover(q, now)
local result = enqueue_items(q, KEYS[9], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], 7 + r, #ARGV, now)
write_records(result, 9, 6, r)
notify(q, before, ARGV[1], ARGV[2])
return result
`);

/**
 * KEYS: seq, due, then one queue block per queue. ARGV: wake, owner, leaseMs, max, then the queue names.
 * Returns {index, left, id, payload, fence, deliveries, ...} for the first queue with ready items
 * (1-based index; left: -2 when ready items remain in some queue, else the dueInMs below), or
 * {0, dueInMs} when none had any (dueInMs: -1 when nothing is delayed or claimed).
 */
export const CLAIM = script(`${QUEUE_OPS}
local n = (#KEYS - 2) / 8
local now = now_ms()
local qs, names, before = {}, {}, {}
for i = 1, n do
  qs[i] = qkeys(3 + (i - 1) * 8)
  names[i] = ARGV[4 + i]
  before[i] = redis.call('LLEN', qs[i].ready)
  recover(qs[i], now)
end
local out = take(qs, names, KEYS[1], KEYS[2], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), now)
for i = 1, n do notify(qs[i], before[i], ARGV[1], names[i]) end
return claim_reply(out, qs, now)
`);

/**
 * Enqueue, then claim for a claimer of this store that is waiting on the queue (the agent that
 * takes a call and has room runs it, with no wake-up round trip). KEYS: seq, due, one queue block
 * per claimer queue, then the record keys. ARGV: wake, owner, leaseMs, max, index of the enqueued
 * queue among them (1-based), maxPending ('' = none), maxTotal ('' = none), item count, record
 * count r, (id, payload) per item, the queue names, then the r record values (set as ENQUEUE sets
 * them). Returns {enqueue reply, claim reply} as ENQUEUE and CLAIM return them.
 */
export const ENQUEUE_CLAIM = script(`${QUEUE_OPS}
local items, r = tonumber(ARGV[8]), tonumber(ARGV[9])
local n = (#KEYS - 2 - r) / 8
local first_name = 10 + 2 * items
local now = now_ms()
local qs, names, before = {}, {}, {}
for i = 1, n do
  qs[i] = qkeys(3 + (i - 1) * 8)
  names[i] = ARGV[first_name + i - 1]
  before[i] = redis.call('LLEN', qs[i].ready)
  recover(qs[i], now)
end
local e = tonumber(ARGV[5])
local enqueued = enqueue_items(qs[e], KEYS[2], names[e], 0, ARGV[6], ARGV[7], 10, first_name - 1, now)
write_records(enqueued, 2 + 8 * n, first_name + n - 1, r)
local out = take(qs, names, KEYS[1], KEYS[2], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), now)
for i = 1, n do notify(qs[i], before[i], ARGV[1], names[i]) end
return { enqueued, claim_reply(out, qs, now) }
`);

/**
 * An eager hand-over (EnqueueOptions.eager): the item goes straight to claimed, held by the claimer
 * that is already running it, without passing through the ready list (so no cap applies: it never
 * waits). KEYS: seq, due, queue block, then the record keys. ARGV: owner, leaseMs, queue name, id,
 * payload, record count r, the r record values. Returns the claim's fence, or 0 when the id is
 * already in the queue (only the records are written, as ENQUEUE writes them).
 */
export const ENQUEUE_TAKE = script(`
local q = qkeys(3)
local id = ARGV[4]
local r = tonumber(ARGV[6])
-- An id already queued counts as accepted, as in ENQUEUE, records included.
if redis.call('HEXISTS', q.payload, id) == 1 then
  for j = 1, r do redis.call('SET', KEYS[10 + j], ARGV[6 + j]) end
  return 0
end
local deadline = now_ms() + tonumber(ARGV[2])
local fence = redis.call('INCR', KEYS[1])
redis.call('HSET', q.payload, id, ARGV[5])
redis.call('HSET', q.claims, id, 1)
redis.call('HSET', q.fence, id, fence)
redis.call('HSET', q.owner, id, ARGV[1])
redis.call('ZADD', q.claimed, deadline, id)
redis.call('ZADD', KEYS[2], 'LT', deadline, ARGV[3])
for j = 1, r do redis.call('SET', KEYS[10 + j], ARGV[6 + j]) end
return fence
`);

/**
 * Whether a hand-over whose ENQUEUE_TAKE reply was lost did run: KEYS: queue block. ARGV: id,
 * owner. Returns the fence of the claim when `owner` holds it on its first delivery, else 0.
 */
export const HANDED_OVER = script(`
local q = qkeys(1)
local id = ARGV[1]
if redis.call('HGET', q.owner, id) ~= ARGV[2] or redis.call('HGET', q.claims, id) ~= '1' then return 0 end
return tonumber(redis.call('HGET', q.fence, id))
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

/**
 * The writes of an `Effects` (store.ts), as encoded by the store: effect keys in KEYS from index
 * `k`, ops in ARGV from index `a` to `last`, each op a letter and its arguments:
 * - g value ttl('' = none)     guard: SET NX (PX); when the key exists, stop and return 0
 * - p ttl('' = keep) n v1..vn  RPUSH the values, then PEXPIRE
 * - i by min('' = none)        add to an integer key (KEEPTTL), skipped below min
 * - x ttl                      PEXPIRE an existing key
 * - m channel message          PUBLISH (takes no key)
 * Returns 1 when everything was applied.
 */
const EFFECTS = `
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
`;

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
 * Complete claims and apply each one's effects (see EFFECTS), claim by claim. KEYS: one queue
 * block per queue involved, then each claim's effect keys in turn. ARGV: wake, queue count, the
 * queue names, then per claim: its queue's index (1-based), id, fence, effect key count, effect
 * arg count, the effect args. Returns per claim 1 (completed, effects applied), 2 (completed,
 * their guard stopped them) or 0 (stale: nothing written).
 */
export const SETTLE = script(`${EFFECTS}
local wake = ARGV[1]
local nq = tonumber(ARGV[2])
local now = now_ms()
local out = {}
local k, a = 1 + 8 * nq, 3 + nq
while a <= #ARGV do
  local qi, id, fence = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2]
  local nkeys, nargs = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local q = qkeys(1 + 8 * (qi - 1))
  local first = a + 5
  if held(q, id, fence, now, wake, ARGV[2 + qi]) then
    redis.call('ZREM', q.claimed, id)
    forget(q, id)
    if apply_effects(k, first, first + nargs - 1) == 1 then out[#out + 1] = 1 else out[#out + 1] = 2 end
  else
    out[#out + 1] = 0
  end
  k = k + nkeys
  a = first + nargs
end
return out
`);

/** KEYS: the effect keys. ARGV: the effect ops (see EFFECTS). Returns 1, or 0 when the guard found its key. */
export const APPLY = `${EFFECTS}
return apply_effects(1, 1, #ARGV)
`;

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

// ---- hashes (dicts) -------------------------------------------------------------------------
//
// A hash is three keys, passed in this order in KEYS ({@link HASH_PARTS}):
// - `v` HASH field -> value
// - `d` ZSET field -> deadline (ms, server time): the earlier of its fixed TTL and its inactivity
//       deadline; fields without one are not in it
// - `x` HASH field -> end of its fixed TTL (fields written with `ttlMs` only)
// Redis 7.0 has no per-field expiry (HPEXPIRE is 7.4), so every script drops the fields whose
// deadline passed (a bounded number per call) and counts the rest as absent, and the three keys
// carry a key expiry at the latest field deadline when every field has one: a dict nobody
// touches again disappears on its own.

export const HASH_PARTS = ["v", "d", "x"] as const;

/** Expired fields dropped per call (the rest are counted as absent until a later call drops them). */
export const HASH_PURGE_LIMIT = 1000;

const HASH_PRELUDE = `${NOW_MS}

local function purge(v, d, x, now)
  local gone = redis.call('ZRANGEBYSCORE', d, '-inf', now, 'LIMIT', 0, ${HASH_PURGE_LIMIT})
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

-- Live fields: all of them but those past their deadline and not dropped yet.
local function live_count(v, d, now)
  return redis.call('HLEN', v) - redis.call('ZCOUNT', d, '-inf', now)
end

local function drop_field(v, d, x, field)
  redis.call('HDEL', v, field)
  redis.call('HDEL', x, field)
  redis.call('ZREM', d, field)
end

-- The keys expire with the latest field deadline when every field has one; else they persist.
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
`;

function hashScript(body: string): string {
  return `${HASH_PRELUDE}\n${body}`;
}

/** KEYS: v, d, x. ARGV: field, idleMs ('' = no refresh). Returns the value or nil. */
export const HASH_GET = hashScript(`
local v, d, x = KEYS[1], KEYS[2], KEYS[3]
local field = ARGV[1]
local now = now_ms()
if expired(d, field, now) then
  drop_field(v, d, x, field)
  key_expiry(v, d, x)
  return false
end
local value = redis.call('HGET', v, field)
if not value then return false end
if ARGV[2] ~= '' then
  local deadline = now + tonumber(ARGV[2])
  local fixed = redis.call('HGET', x, field)
  if fixed and tonumber(fixed) < deadline then deadline = tonumber(fixed) end
  redis.call('ZADD', d, deadline, field)
  key_expiry(v, d, x)
end
return value
`);

/**
 * KEYS: v, d, x. ARGV: ifAbsent (1/0), ttlMs ('' = none), idleMs ('' = none), maxFields ('' = none),
 * then field, value pairs. Returns {1, written} or {0, liveCount} (refused, nothing written).
 */
export const HASH_SET = hashScript(`
local v, d, x = KEYS[1], KEYS[2], KEYS[3]
local ifAbsent = ARGV[1] == '1'
local now = now_ms()
purge(v, d, x, now)
local chosen, order, added = {}, {}, 0
for i = 5, #ARGV, 2 do
  local field = ARGV[i]
  if not (ifAbsent and chosen[field]) then
    local live = redis.call('HEXISTS', v, field) == 1 and not expired(d, field, now)
    if not (ifAbsent and live) then
      if not live and not chosen[field] then added = added + 1 end
      if not chosen[field] then order[#order + 1] = field end
      chosen[field] = ARGV[i + 1]
    end
  end
end
local count = live_count(v, d, now)
if ARGV[4] ~= '' and count + added > tonumber(ARGV[4]) then return { 0, count } end
if #order == 0 then return { 1, 0 } end
local fixed = nil
if ARGV[2] ~= '' then fixed = now + tonumber(ARGV[2]) end
local deadline = fixed
if ARGV[3] ~= '' then
  local idle = now + tonumber(ARGV[3])
  if not deadline or idle < deadline then deadline = idle end
end
for _, field in ipairs(order) do
  redis.call('HSET', v, field, chosen[field])
  if deadline then redis.call('ZADD', d, deadline, field) else redis.call('ZREM', d, field) end
  if fixed then redis.call('HSET', x, field, fixed) else redis.call('HDEL', x, field) end
end
key_expiry(v, d, x)
return { 1, #order }
`);

/** KEYS: v, d, x. ARGV: field. Returns the removed value or nil. */
export const HASH_DELETE = hashScript(`
local v, d, x = KEYS[1], KEYS[2], KEYS[3]
local field = ARGV[1]
local now = now_ms()
local value = redis.call('HGET', v, field)
if value and expired(d, field, now) then value = false end
drop_field(v, d, x, field)
key_expiry(v, d, x)
return value
`);

/** KEYS: v, d, x. Returns the number of live fields. */
export const HASH_LENGTH = hashScript(`
local v, d, x = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
purge(v, d, x, now)
return live_count(v, d, now)
`);

/** KEYS: v, d. ARGV: cursor, count. Returns {nextCursor, field, value, ...} of live fields. */
export const HASH_SCAN = hashScript(`
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
`);

/** KEYS: v, d, x. Returns how many live fields the hash held. */
export const HASH_DROP = hashScript(`
local v, d, x = KEYS[1], KEYS[2], KEYS[3]
local count = live_count(v, d, now_ms())
redis.call('DEL', v, d, x)
return count
`);

// ---- partitioned lists (queues) ---------------------------------------------------------------
//
// A group is an index ZSET (partition -> expiry deadline, ms server time; +inf: none) and one LIST
// per partition, named `<list prefix><partition>` (the prefix is passed as an argument). Lists
// expire on their own (PEXPIRE on push); pops are plain LPOP / BLMPOP, so a list emptied by a pop
// disappears while its index entry stays until a script notices the list is gone.

/** KEYS: list, index. ARGV: partition, ttlMs ('' = keep), maxLength (''), maxPartitions (''), list prefix, values...
 * Returns {1, length} or {0, reason, count}. */
export const PARTITION_PUSH = hashScript(`
local list, index = KEYS[1], KEYS[2]
local partition, prefix = ARGV[1], ARGV[5]
local now = now_ms()
local n = #ARGV - 5
local length = redis.call('LLEN', list)
if n == 0 then return { 1, length } end
if ARGV[3] ~= '' and length + n > tonumber(ARGV[3]) then return { 0, 'length', length } end
if length == 0 and ARGV[4] ~= '' then
  local max = tonumber(ARGV[4])
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  redis.call('ZREM', index, partition)
  local count = redis.call('ZCARD', index)
  if count >= max then
    -- Partitions emptied by pops still have index entries: drop those, then count again.
    local members = redis.call('ZRANGE', index, 0, -1)
    for _, member in ipairs(members) do
      if redis.call('EXISTS', prefix .. member) == 0 then redis.call('ZREM', index, member) end
    end
    count = redis.call('ZCARD', index)
    if count >= max then return { 0, 'partitions', count } end
  end
end
for i = 6, #ARGV, 1000 do
  redis.call('RPUSH', list, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[2] ~= '' then
  local ttl = tonumber(ARGV[2])
  redis.call('PEXPIRE', list, ttl)
  redis.call('ZADD', index, now + ttl, partition)
else
  local left = redis.call('PTTL', list)
  if left >= 0 then redis.call('ZADD', index, now + left, partition) else redis.call('ZADD', index, '+inf', partition) end
end
return { 1, redis.call('LLEN', list) }
`);

/** KEYS: index. ARGV: list prefix. Returns {partitions, items} over partitions holding items (and prunes the index). */
export const PARTITION_STATS = hashScript(`
local index, prefix = KEYS[1], ARGV[1]
redis.call('ZREMRANGEBYSCORE', index, '-inf', now_ms())
local members = redis.call('ZRANGE', index, 0, -1)
local partitions, items = 0, 0
for _, member in ipairs(members) do
  local n = redis.call('LLEN', prefix .. member)
  if n == 0 then
    redis.call('ZREM', index, member)
  else
    partitions = partitions + 1
    items = items + n
  end
end
return { partitions, items }
`);

/** KEYS: list, index. ARGV: partition. Returns how many values the partition held. */
export const PARTITION_CLEAR = `
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
`;

/** KEYS: index. ARGV: list prefix. Returns how many values the group held. */
export const PARTITION_DROP = `
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local items = 0
for _, member in ipairs(members) do
  local list = ARGV[1] .. member
  items = items + redis.call('LLEN', list)
  redis.call('DEL', list)
end
redis.call('DEL', KEYS[1])
return items
`;
