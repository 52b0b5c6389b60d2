--[[
  claimDueBuffer: claim the conversation's next batch under its flush lock. A batch awaiting
  retry (or orphaned by a crashed flusher) comes first; else the open buffer, if due, becomes a
  new batch by an atomic generation swap (RENAME buffer -> batchMessages), so later appends
  start a fresh buffer and are never merged into a batch already handed out.

  KEYS[1]  lock           STRING flush lock token
  KEYS[2]  batch          HASH outstanding batch
  KEYS[3]  batchMessages  LIST outstanding batch entries
  KEYS[4]  meta           HASH open buffer meta
  KEYS[5]  buffer         LIST open buffer entries
  KEYS[6]  timer          STRING timer marker (cleared when the burst becomes a batch)
  KEYS[7]  fence          STRING fencing counter
  KEYS[8]  due            ZSET partition due index
  KEYS[9]  leases         ZSET partition lease expiries
  KEYS[10] events         STREAM partition events

  ARGV[1]  conversation   raw conversation key
  ARGV[2]  label          masked conversation label for events
  ARGV[3]  newBatchId     batch id to use if a new batch is created
  ARGV[4]  token          lock token for this claim
  ARGV[5]  force          "1": claim even if not due (reason manual / retry backoff skipped)
  ARGV[6]  windowMs       ms
  ARGV[7]  graceMs        ms
  ARGV[8]  maxWaitMs      ms
  ARGV[9]  maxMessages    count
  ARGV[10] maxBytes       bytes
  ARGV[11] lockTtlMs      lease length, ms
  ARGV[12] dedupTtlMs     fence counter TTL, ms

  Returns
    {'locked', nowMs}
    {'not_due', dueAtMs, nowMs}
    {'empty', nowMs}
    {'claimed', nowMs, leaseUntilMs, batchId, fence, attempt, reason, firstAtMs, lastAtMs,
     createdAtMs, {entries...}}
]]
local lockKey = KEYS[1] -- STRING lock token
local batchKey = KEYS[2] -- HASH batch
local batchMessagesKey = KEYS[3] -- LIST batch entries
local metaKey = KEYS[4] -- HASH open buffer meta
local bufferKey = KEYS[5] -- LIST open buffer
local timerKey = KEYS[6] -- STRING timer marker
local fenceKey = KEYS[7] -- STRING fence counter
local dueKey = KEYS[8] -- ZSET due index
local leasesKey = KEYS[9] -- ZSET leases
local eventsKey = KEYS[10] -- STREAM events

local conversation = ARGV[1] -- raw conversation key
local label = ARGV[2] -- masked label
local newBatchId = ARGV[3] -- id for a new batch
local token = ARGV[4] -- lock token
local force = ARGV[5] == '1' -- manual claim
local windowMs = tonumber(ARGV[6]) -- ms
local graceMs = tonumber(ARGV[7]) -- ms
local maxWaitMs = tonumber(ARGV[8]) -- ms
local maxMessages = tonumber(ARGV[9]) -- count
local maxBytes = tonumber(ARGV[10]) -- bytes
local lockTtlMs = tonumber(ARGV[11]) -- ms
local dedupTtlMs = tonumber(ARGV[12]) -- ms

--- @include "now"
--- @include "flush"
--- @include "events"

local now = nowMs()

if redis.call('EXISTS', lockKey) == 1 then return {'locked', now} end

if redis.call('EXISTS', batchKey) == 1 then
  local nextAt = tonumber(redis.call('HGET', batchKey, 'nextAt')) or 0
  if not force and nextAt > now then
    redis.call('ZADD', dueKey, nextAt, conversation) -- repair the index
    return {'not_due', nextAt, now}
  end
else
  local meta = readMeta(metaKey)
  if not meta or redis.call('EXISTS', bufferKey) == 0 then
    -- meta without entries cannot be claimed: drop the stray meta with the index entry
    redis.call('DEL', metaKey)
    redis.call('ZREM', dueKey, conversation)
    return {'empty', now}
  end
  local flushAt, reason = computeFlush(meta, meta.lastAt, windowMs, graceMs, maxWaitMs,
    maxMessages, maxBytes)
  if flushAt > now then
    if not force then
      redis.call('ZADD', dueKey, flushAt, conversation)
      return {'not_due', flushAt, now}
    end
    reason = 'manual'
  end
  redis.call('RENAME', bufferKey, batchMessagesKey)
  redis.call('PERSIST', batchMessagesKey)
  redis.call('DEL', metaKey, timerKey)
  local fence = redis.call('INCR', fenceKey)
  redis.call('PEXPIRE', fenceKey, dedupTtlMs)
  redis.call('HSET', batchKey,
    'batchId', newBatchId, 'conversation', conversation, 'fence', fence, 'attempt', 0,
    'reason', reason, 'firstAt', meta.firstAt, 'lastAt', meta.lastAt, 'count', meta.count,
    'bytes', meta.bytes, 'createdAt', now, 'nextAt', 0, 'lastError', '', 'inFlight', '0')
  emitEvent(eventsKey, 'due', label, now, 'batchId', newBatchId, 'reason', reason,
    'size', meta.count)
end

local attempt = redis.call('HINCRBY', batchKey, 'attempt', 1)
redis.call('HSET', batchKey, 'inFlight', '1')
local leaseUntil = now + lockTtlMs
redis.call('SET', lockKey, token, 'PX', lockTtlMs)
redis.call('ZADD', leasesKey, leaseUntil, conversation)
redis.call('ZREM', dueKey, conversation)

local b = redis.call('HMGET', batchKey, 'batchId', 'fence', 'reason', 'firstAt', 'lastAt',
  'createdAt')
local entries = redis.call('LRANGE', batchMessagesKey, 0, -1)
emitEvent(eventsKey, 'claimed', label, now, 'batchId', b[1], 'attempt', attempt,
  'size', #entries)
return {'claimed', now, leaseUntil, b[1], tonumber(b[2]), attempt, b[3], tonumber(b[4]),
  tonumber(b[5]), tonumber(b[6]), entries}
