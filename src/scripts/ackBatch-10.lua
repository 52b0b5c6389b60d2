--[[
  ackBatch: the processor took the batch. Drop it, keep a processed record (which makes a
  repeated ack of the same batchId a no-op), release the lock, and put an open buffer that
  arrived during the flight back on the due index.

  KEYS[1]  lock           STRING flush lock token
  KEYS[2]  batch          HASH outstanding batch
  KEYS[3]  batchMessages  LIST outstanding batch entries
  KEYS[4]  processed      STRING processed(batchId) record
  KEYS[5]  meta           STRING open buffer meta (BITFIELD, includes/flush.lua)
  KEYS[6]  due            ZSET partition due index
  KEYS[7]  leases         ZSET partition lease expiries
  KEYS[8]  events         STREAM partition events
  KEYS[9]  stats          HASH partition counters
  KEYS[10] daily          HASH partition day counters

  ARGV[1]  conversation    raw conversation key
  ARGV[2]  label           masked conversation label for events
  ARGV[3]  batchId         batch being acknowledged
  ARGV[4]  token           lock token from the claim (the lock's value)
  ARGV[5]  processedTtlMs  processed record TTL, ms
  ARGV[6]  flushRules      windowMs,graceMs,maxWaitMs,maxMessages,maxBytes, packed
  ARGV[7]  texts           the batch's texts for the delivered event, compact JSON (masked
                           unless logPii, capped; src/core/delivered-texts.ts); '' = none
  ARGV[8]  callerMs        the caller's clock, ms: the delivered event's `at` and the day of its
                           counters when no buffer opened during the flight. Redis TIME is read
                           only for such a buffer, whose due time is a flush rule.
  ARGV[9]  probe           "1": also answer whether the partition holds nothing at all now (one
                           EXISTS of the meta, the due index and the leases: an empty ZSET is no
                           key; it spares the meta's read when all are gone), for a timer that
                           settles the wake-up its burst lowered without reading them again
                           (nextDue). '' or absent: no probe.

  Returns
    {dueAgainAtMs (0 = no open buffer), nowMs (Redis time, or callerMs without a buffer), 0,
     idle (1 = probed: no open buffer, due entry or lease left in the partition; else 0)}
    {0, nowMs, 1}       already acknowledged (processed record present): acking is idempotent
    -1 LOCK_LOST        lock missing or held by another token
    -2 BATCH_NOT_FOUND  batchId is not the conversation's current batch
]]
local lockKey = KEYS[1] -- STRING lock token
local batchKey = KEYS[2] -- HASH batch
local batchMessagesKey = KEYS[3] -- LIST batch entries
local processedKey = KEYS[4] -- STRING processed record
local metaKey = KEYS[5] -- STRING open buffer meta
local dueKey = KEYS[6] -- ZSET due index
local leasesKey = KEYS[7] -- ZSET leases
local eventsKey = KEYS[8] -- STREAM events
local statsKey = KEYS[9] -- HASH counters
local dailyKey = KEYS[10] -- HASH day counters

local conversation = ARGV[1] -- raw conversation key
local label = ARGV[2] -- masked label
local batchId = ARGV[3] -- batch id
local token = ARGV[4] -- lock token
local processedTtlMs = tonumber(ARGV[5]) -- ms
local packedRules = ARGV[6] -- flush rules, packed
local texts = ARGV[7] or '' -- JSON for the event, '' = none
local callerMs = tonumber(ARGV[8]) -- caller's clock, ms
local probe = ARGV[9] == '1' -- answer whether the partition is empty

--- @include "now"
--- @include "flush"
--- @include "events"
--- @include "lock"

local rules = decodeRules(packedRules)

local owner, count = checkOwner(lockKey, batchKey, token, batchId)
if owner ~= 0 then
  -- An ack whose answer was lost and is sent again finds the processed record.
  if redis.call('EXISTS', processedKey) == 1 then return {0, nowMs(), 1} end
  return owner
end
count = count or redis.call('LLEN', batchMessagesKey)
redis.call('DEL', batchKey, batchMessagesKey, lockKey)
redis.call('ZREM', leasesKey, conversation)

-- An open buffer that arrived during the flight queued behind the batch: its due time is a flush
-- rule, on Redis time. Without one, the event and the counters take the caller's clock (display
-- and statistics only), which spares the TIME. A probe asks first whether the partition holds
-- anything at all (this batch's lease is gone now): when not, there is no meta to read either.
local meta = nil
local idle = 0
if probe and redis.call('EXISTS', metaKey, dueKey, leasesKey) == 0 then
  idle = 1
else
  meta = readMeta(metaKey)
end
local now = (meta or not callerMs) and nowMs() or callerMs

redis.call('SET', processedKey, '1', 'PX', processedTtlMs)

-- The texts ride on the event this ack writes anyway: no extra command per batch.
local textsField = texts ~= '' and {'texts', texts} or {}
emitEvent(eventsKey, 'delivered', label, now, 'batchId', batchId, 'size', count,
  unpack(textsField))
countEvent(statsKey, dailyKey, now, 'batches', 1)
countEvent(statsKey, dailyKey, now, 'batch_messages', count)

-- Index that buffer now. (With none there is no due entry to drop: the claim removed it, and
-- appends behind a batch add none.)
local dueAgain = 0
if meta then
  dueAgain = computeFlush(meta, now, rules)
  redis.call('ZADD', dueKey, dueAgain, conversation)
end
return {dueAgain, now, 0, idle}
