--[[
  supersedeBatch: the processor answered 425 (newer messages pending). Put the batch's entries
  back in front of the open buffer's, order kept, so they flush together; no attempt counted.
  The old batchId is gone; the merged buffer becomes a new batch at its next claim. The
  merged buffer's meta keeps the batch's `createdAt` and its attempts so far (less this one),
  so MAX_AGE and MAX_ATTEMPTS still end a batch that is superseded forever, and how many of its
  messages were already counted as ingested.

  KEYS[1]  lock           STRING flush lock token
  KEYS[2]  batch          HASH outstanding batch
  KEYS[3]  batchMessages  LIST outstanding batch entries
  KEYS[4]  meta           STRING open buffer meta (BITFIELD, includes/flush.lua)
  KEYS[5]  buffer         LIST open buffer entries
  KEYS[6]  due            ZSET partition due index
  KEYS[7]  leases         ZSET partition lease expiries
  KEYS[8]  events         STREAM partition events
  KEYS[9]  stats          HASH partition counters
  KEYS[10] daily          HASH partition day counters
  KEYS[11] seen           ZSET the conversation's dedup records (persisted again: the buffer
                          is open)

  ARGV[1]  conversation  raw conversation key
  ARGV[2]  label         masked conversation label for events
  ARGV[3]  batchId       batch held
  ARGV[4]  token         lock token from the claim
  ARGV[5]  retryMaxAgeMs age (since createdAt) past which a supersede is refused, ms
  ARGV[6]   flushRules   windowMs,graceMs,maxWaitMs,maxMessages,maxBytes, packed

  Returns
    {'merged', size, flushAtMs, nowMs}
    {'nothing_newer', 0, 0, nowMs}   no open buffer; state unchanged (caller then fails)
    {'expired', 0, 0, nowMs}         older than retryMaxAgeMs; state unchanged (caller fails,
                                     which dead-letters it)
    -1 LOCK_LOST        lock missing or held by another token
    -2 BATCH_NOT_FOUND  batchId is not the conversation's current batch
]]
local lockKey = KEYS[1] -- STRING lock token
local batchKey = KEYS[2] -- HASH batch
local batchMessagesKey = KEYS[3] -- LIST batch entries
local metaKey = KEYS[4] -- STRING open buffer meta
local bufferKey = KEYS[5] -- LIST open buffer
local dueKey = KEYS[6] -- ZSET due index
local leasesKey = KEYS[7] -- ZSET leases
local eventsKey = KEYS[8] -- STREAM events
local statsKey = KEYS[9] -- HASH counters
local dailyKey = KEYS[10] -- HASH day counters
local seenKey = KEYS[11] -- ZSET dedup records

local conversation = ARGV[1] -- raw conversation key
local label = ARGV[2] -- masked label
local batchId = ARGV[3] -- batch id
local token = ARGV[4] -- lock token
local retryMaxAgeMs = tonumber(ARGV[5]) -- ms
local packedRules = ARGV[6] -- flush rules, packed

--- @include "now"
--- @include "flush"
--- @include "events"
--- @include "lock"

local rules = decodeRules(packedRules)

local owner = checkOwner(lockKey, batchKey, token, batchId)
if owner ~= 0 then return owner end
local now = nowMs()

local meta = readMeta(metaKey)
if not meta then return {'nothing_newer', 0, 0, now} end
local b = redis.call('HMGET', batchKey, 'firstAt', 'count', 'bytes', 'createdAt', 'attempt')
local createdAt = tonumber(b[4]) or now
if now - createdAt >= retryMaxAgeMs then return {'expired', 0, 0, now} end

-- batchMessages ++ buffer, then the result becomes the buffer. Pushed in chunks because
-- unpack() of a very long list would overflow the Lua stack.
local newer = redis.call('LRANGE', bufferKey, 0, -1)
local chunk = 1000
for i = 1, #newer, chunk do
  redis.call('RPUSH', batchMessagesKey, unpack(newer, i, math.min(i + chunk - 1, #newer)))
end
redis.call('RENAME', batchMessagesKey, bufferKey)
-- The buffer is open again, so its conversation's ids are remembered until it is claimed.
redis.call('PERSIST', seenKey)

meta.firstAt = tonumber(b[1]) or meta.firstAt
meta.count = meta.count + (tonumber(b[2]) or 0)
meta.bytes = meta.bytes + (tonumber(b[3]) or 0)
-- The superseded delivery is not an attempt: the next claim starts from the ones before it.
local attempts = math.max(0, (tonumber(b[5]) or 1) - 1)
-- `counted`: the batch's messages were counted as ingested at its claim; the next claim of the
-- merged buffer counts only the rest.
meta.createdAt, meta.attempts, meta.counted = createdAt, attempts, tonumber(b[2]) or 0
writeMeta(metaKey, meta)

redis.call('DEL', batchKey, lockKey)
redis.call('ZREM', leasesKey, conversation)
local flushAt = computeFlush(meta, now, rules)
redis.call('ZADD', dueKey, flushAt, conversation)

emitEvent(eventsKey, 'superseded', label, now, 'batchId', batchId, 'size', meta.count)
countEvent(statsKey, dailyKey, now, 'superseded', 1)
return {'merged', meta.count, flushAt, now}
