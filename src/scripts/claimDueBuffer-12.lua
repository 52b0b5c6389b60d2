--[[
  claimDueBuffer: claim the conversation's next batch under its flush lock. A batch awaiting
  retry (or orphaned by a crashed flusher) comes first; else the open buffer, if due, becomes a
  new batch by an atomic generation swap (RENAMENX buffer -> batchMessages, which also tells that
  no batch is outstanding, so the common claim costs no EXISTS), so later appends start a fresh
  buffer and are never merged into a batch already handed out. A buffer larger
  than maxMessages/maxBytes (it queued behind a retrying or in-flight batch, or was merged by a
  supersede) gives only its oldest entries that fit; the rest stays the open buffer, in order,
  and becomes the next batch. A single entry larger than maxBytes goes alone.
  The append writes the due index only when a burst starts or fills, so a claim that finds the
  buffer not due yet re-scores it (the entry is a lower bound). The burst's messages count as
  ingested here, once per batch. A claim that empties the buffer starts the dedup records'
  LULL_DEDUP_TTL_MS (and, every 8th such claim, drops the ids older than that).

  KEYS[1]  lock           STRING flush lock token
  KEYS[2]  batch          HASH outstanding batch
  KEYS[3]  batchMessages  LIST outstanding batch entries
  KEYS[4]  meta           STRING open buffer meta (BITFIELD, includes/flush.lua)
  KEYS[5]  buffer         LIST open buffer entries
  KEYS[6]  fence          STRING fencing counter (no TTL: fences never go back)
  KEYS[7]  due            ZSET partition due index
  KEYS[8]  leases         ZSET partition lease expiries
  KEYS[9]  events         STREAM partition events
  KEYS[10] seen           ZSET the conversation's dedup records
  KEYS[11] stats          HASH partition counters
  KEYS[12] daily          HASH partition day counters

  ARGV[1]  conversation   raw conversation key
  ARGV[2]  label          masked conversation label for events
  ARGV[3]  newBatchId     batch id to use if a new batch is created
  ARGV[4]  token          random part of the lock token for this claim
  ARGV[5]  force          "1": claim even if not due (reason manual / retry backoff skipped)
  ARGV[6]  flushRules     windowMs,graceMs,maxWaitMs,maxMessages,maxBytes, packed
  ARGV[7]  lockTtlMs      lease length, ms
  ARGV[8]  dedupTtlMs     how long a message id is remembered, ms

  Returns
    {'locked', nowMs}
    {'not_due', dueAtMs, nowMs}
    {'empty', nowMs}
    {'claimed', nowMs, leaseUntilMs, batchId, fence, attempt, reason, firstAtMs, lastAtMs,
     createdAtMs, {entries...}, lockToken}   lockToken: the lock's value, which every later step
                                               presents (`<token>|<batchId>|<count>`)
]]
local lockKey = KEYS[1] -- STRING lock token
local batchKey = KEYS[2] -- HASH batch
local batchMessagesKey = KEYS[3] -- LIST batch entries
local metaKey = KEYS[4] -- STRING open buffer meta
local bufferKey = KEYS[5] -- LIST open buffer
local fenceKey = KEYS[6] -- STRING fence counter
local dueKey = KEYS[7] -- ZSET due index
local leasesKey = KEYS[8] -- ZSET leases
local eventsKey = KEYS[9] -- STREAM events
local seenKey = KEYS[10] -- ZSET dedup records
local statsKey = KEYS[11] -- HASH counters
local dailyKey = KEYS[12] -- HASH day counters

local conversation = ARGV[1] -- raw conversation key
local label = ARGV[2] -- masked label
local newBatchId = ARGV[3] -- id for a new batch
local token = ARGV[4] -- lock token
local force = ARGV[5] == '1' -- manual claim
local packedRules = ARGV[6] -- flush rules, packed
local lockTtlMs = tonumber(ARGV[7]) -- ms
local dedupTtlMs = tonumber(ARGV[8]) -- ms

--- @include "now"
--- @include "flush"
--- @include "events"

local rules = decodeRules(packedRules)
local maxMessages, maxBytes = rules.maxMessages, rules.maxBytes
local now = nowMs()

-- The meta first: a due buffer taken whole, with no batch outstanding, is the common claim, and
-- RENAMENX makes it without the EXISTS below (an outstanding batch always has its batchMessages,
-- so RENAMENX refuses exactly when one exists, and then the cases below decide as before).
-- The meta, and what a supersede carried over: the first batch's createdAt and attempts.
local meta = readMeta(metaKey)
local flushAt, reason
local renamed = false
if meta and meta.count > 0 then
  flushAt, reason = computeFlush(meta, meta.lastAt, rules)
  if (force or flushAt <= now) and meta.count <= maxMessages and meta.bytes <= maxBytes then
    local r = redis.pcall('RENAMENX', bufferKey, batchMessagesKey)
    renamed = r == 1 -- 0: a batch is outstanding; an error: no buffer (the meta is a stray)
  end
end

-- A lock is only ever held over a batch, so one EXISTS tells the three cases apart: 2 = in flight,
-- 1 = a batch awaiting retry (or orphaned by a crashed flusher: the lock lapsed), 0 = neither.
local live = renamed and 0 or redis.call('EXISTS', lockKey, batchKey)
local attempt
local claimed = nil -- a new batch's fields, known without reading them back
if live == 2 then
  -- In flight. A burst queued behind it is indexed (appendMessage): move its entry to the
  -- lease's end, so sweeps do not come back for it before the ack (which re-scores it) or the
  -- lease's expiry (a crashed flusher).
  redis.call('ZADD', dueKey, 'XX', 'GT', now + math.max(0, redis.call('PTTL', lockKey)),
    conversation)
  return {'locked', now}
end
if live == 1 then
  local nextAtField = redis.call('HGET', batchKey, 'nextAt')
  if not nextAtField then return {'locked', now} end -- a lock with no batch: let it lapse
  local nextAt = tonumber(nextAtField) or 0
  if not force and nextAt > now then
    redis.call('ZADD', dueKey, nextAt, conversation) -- repair the index
    return {'not_due', nextAt, now}
  end
  attempt = redis.call('HINCRBY', batchKey, 'attempt', 1)
  redis.call('HSET', batchKey, 'inFlight', '1')
else
  if not meta or meta.count == 0 then
    -- meta without entries cannot be claimed: drop the stray meta with the index entry
    redis.call('DEL', metaKey)
    redis.call('ZREM', dueKey, conversation)
    return {'empty', now}
  end
  if flushAt > now then
    if not force then
      redis.call('ZADD', dueKey, flushAt, conversation)
      return {'not_due', flushAt, now}
    end
    reason = 'manual'
  end
  local createdAt = meta.createdAt > 0 and meta.createdAt or now
  attempt = meta.attempts + 1
  local take = {count = meta.count, bytes = meta.bytes, lastAt = meta.lastAt}
  if meta.count > maxMessages or meta.bytes > maxBytes then
    -- Oldest entries first, as many as fit; at least one (an oversized entry goes alone).
    local entries = redis.call('LRANGE', bufferKey, 0, maxMessages - 1)
    local n, bytes = 0, 0
    for _, entry in ipairs(entries) do
      if n > 0 and bytes + #entry > maxBytes then break end
      n = n + 1
      bytes = bytes + #entry
    end
    take = {count = n, bytes = bytes, lastAt = tonumber(string.match(entries[n], '^(%d+)|'))}
  end
  if take.count == meta.count then
    if not renamed and redis.pcall('RENAME', bufferKey, batchMessagesKey).err then
      -- a meta whose entries are gone (lost outside lull) cannot be claimed: drop it
      redis.call('DEL', metaKey)
      redis.call('ZREM', dueKey, conversation)
      return {'empty', now}
    end
    -- Buffers opened before 0.2 carried a TTL, which RENAME would keep (their meta is a hash).
    if meta.legacy then redis.call('PERSIST', batchMessagesKey) end
    redis.call('DEL', metaKey)
    -- No open buffer now: the dedup records start their TTL (an append persists them again).
    redis.call('PEXPIRE', seenKey, dedupTtlMs)
  else
    local entries = redis.call('LRANGE', bufferKey, 0, take.count - 1)
    redis.call('LTRIM', bufferKey, take.count, -1)
    local chunk = 1000
    for i = 1, #entries, chunk do
      redis.call('RPUSH', batchMessagesKey, unpack(entries, i, math.min(i + chunk - 1, #entries)))
    end
    local rest = redis.call('LINDEX', bufferKey, 0)
    -- The rest is a buffer of its own: no carried-over fields.
    writeMeta(metaKey, {firstAt = tonumber(string.match(rest, '^(%d+)|')), lastAt = meta.lastAt,
      count = meta.count - take.count, bytes = meta.bytes - take.bytes})
  end
  local fence = redis.call('INCR', fenceKey)
  -- Ids past the window go at every 8th batch that empties the buffer: that bounds the set of a
  -- conversation that never stays quiet long enough for the TTL, at an eighth of the cost. (Not
  -- at the first: a conversation's first batch has nothing older than the window yet.)
  if take.count == meta.count and fence % 8 == 0 then
    redis.call('ZREMRANGEBYSCORE', seenKey, '-inf', now - dedupTtlMs)
  end
  redis.call('HSET', batchKey,
    'batchId', newBatchId, 'conversation', conversation, 'fence', fence, 'attempt', attempt,
    'reason', reason, 'firstAt', meta.firstAt, 'lastAt', take.lastAt, 'count', take.count,
    'bytes', take.bytes, 'createdAt', createdAt, 'nextAt', 0, 'lastError', '', 'inFlight', '1')
  claimed = {newBatchId, fence, reason, meta.firstAt, take.lastAt, createdAt}
  -- A superseded batch's messages were counted at its own claim.
  local fresh = take.count - math.min(take.count, meta.counted)
  if fresh > 0 then countEvent(statsKey, dailyKey, now, 'ingested', fresh) end
end

local leaseUntil = now + lockTtlMs
redis.call('ZADD', leasesKey, leaseUntil, conversation)
redis.call('ZREM', dueKey, conversation)

local b = claimed or redis.call('HMGET', batchKey, 'batchId', 'fence', 'reason', 'firstAt',
  'lastAt', 'createdAt')
local entries = redis.call('LRANGE', batchMessagesKey, 0, -1)
-- The lock names the batch and its size (includes/lock.lua), so the ack reads no batch hash. It
-- expires at the lease end the claim answers and indexes (PXAT: however long the claim ran).
local lockValue = token .. '|' .. b[1] .. '|' .. #entries
redis.call('SET', lockKey, lockValue, 'PXAT', leaseUntil)
-- One event per claim, new batch or retry (the reason rides on it: no separate `due` event).
emitEvent(eventsKey, 'claimed', label, now, 'batchId', b[1], 'attempt', attempt,
  'size', #entries, 'reason', b[3])
return {'claimed', now, leaseUntil, b[1], tonumber(b[2]), attempt, b[3], tonumber(b[4]),
  tonumber(b[5]), tonumber(b[6]), entries, lockValue}
