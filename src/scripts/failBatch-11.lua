--[[
  failBatch: the delivery failed. Schedule a retry after delayMs, or move the whole batch to
  the dead-letter queue when the failure is permanent or attempts/age are used up.

  KEYS[1]  lock           STRING flush lock token
  KEYS[2]  batch          HASH outstanding batch
  KEYS[3]  batchMessages  LIST outstanding batch entries
  KEYS[4]  deadLetter     HASH dead letter of this batchId
  KEYS[5]  dlq            ZSET partition dead letters batchId -> deadAt ms
  KEYS[6]  meta           STRING open buffer meta (BITFIELD, includes/flush.lua)
  KEYS[7]  due            ZSET partition due index
  KEYS[8]  leases         ZSET partition lease expiries
  KEYS[9]  events         STREAM partition events
  KEYS[10] stats          HASH partition counters
  KEYS[11] daily          HASH partition day counters

  ARGV[1]  conversation      raw conversation key
  ARGV[2]  label             masked conversation label for events
  ARGV[3]  batchId           batch that failed
  ARGV[4]  token             lock token from the claim
  ARGV[5]  error             last error text
  ARGV[6]  delayMs           backoff before the retry, ms
  ARGV[7]  permanent         "1": dead-letter now
  ARGV[8]  retryMaxAttempts  attempts before dead-lettering
  ARGV[9]  retryMaxAgeMs     age (since createdAt) before dead-lettering, ms
  ARGV[10]  flushRules   windowMs,graceMs,maxWaitMs,maxMessages,maxBytes, packed
  ARGV[11] responseBody      processor's response body, already capped and masked ("" = none)

  Returns
    {'retry', retryAtMs, attempt, nowMs}
    {'dead', dueAgainAtMs (0 = no open buffer behind it), attempt, nowMs}
    -1 LOCK_LOST        lock missing or held by another token
    -2 BATCH_NOT_FOUND  batchId is not the conversation's current batch
]]
local lockKey = KEYS[1] -- STRING lock token
local batchKey = KEYS[2] -- HASH batch
local batchMessagesKey = KEYS[3] -- LIST batch entries
local deadLetterKey = KEYS[4] -- HASH dead letter
local dlqKey = KEYS[5] -- ZSET dead letters
local metaKey = KEYS[6] -- STRING open buffer meta
local dueKey = KEYS[7] -- ZSET due index
local leasesKey = KEYS[8] -- ZSET leases
local eventsKey = KEYS[9] -- STREAM events
local statsKey = KEYS[10] -- HASH counters
local dailyKey = KEYS[11] -- HASH day counters

local conversation = ARGV[1] -- raw conversation key
local label = ARGV[2] -- masked label
local batchId = ARGV[3] -- batch id
local token = ARGV[4] -- lock token
local lastError = ARGV[5] -- error text
local delayMs = tonumber(ARGV[6]) -- ms
local permanent = ARGV[7] == '1' -- straight to the DLQ
local retryMaxAttempts = tonumber(ARGV[8]) -- attempts
local retryMaxAgeMs = tonumber(ARGV[9]) -- ms
local packedRules = ARGV[10] -- flush rules, packed
local responseBody = ARGV[11] or '' -- capped, masked response body

--- @include "now"
--- @include "flush"
--- @include "events"
--- @include "lock"
--- @include "reschedule"

local rules = decodeRules(packedRules)

local owner = checkOwner(lockKey, batchKey, token, batchId)
if owner ~= 0 then return owner end
local now = nowMs()

local b = redis.call('HMGET', batchKey, 'attempt', 'createdAt', 'fence', 'reason', 'firstAt',
  'lastAt')
local attempt = tonumber(b[1]) or 0
local createdAt = tonumber(b[2]) or now

if permanent or attempt >= retryMaxAttempts or now - createdAt >= retryMaxAgeMs then
  local entries = redis.call('LRANGE', batchMessagesKey, 0, -1)
  local messages = '[]'
  if #entries > 0 then messages = cjson.encode(entries) end
  redis.call('DEL', deadLetterKey)
  redis.call('HSET', deadLetterKey,
    'batchId', batchId, 'conversation', conversation, 'fence', b[3], 'attempts', attempt,
    'reason', b[4], 'lastError', lastError, 'responseBody', responseBody,
    'firstAt', b[5], 'lastAt', b[6],
    'createdAt', createdAt, 'deadAt', now, 'messages', messages)
  redis.call('ZADD', dlqKey, now, batchId)
  redis.call('DEL', batchKey, batchMessagesKey, lockKey)
  redis.call('ZREM', leasesKey, conversation)
  emitEvent(eventsKey, 'dead_lettered', label, now, 'batchId', batchId, 'attempt', attempt,
    'size', #entries, 'error', lastError)
  countEvent(statsKey, dailyKey, now, 'dead', 1)
  local dueAgain = rescheduleOpenBuffer(metaKey, dueKey, conversation, now, rules)
  return {'dead', dueAgain or 0, attempt, now}
end

local retryAt = now + delayMs
redis.call('HSET', batchKey, 'nextAt', retryAt, 'lastError', lastError, 'inFlight', '0')
redis.call('DEL', lockKey)
redis.call('ZREM', leasesKey, conversation)
redis.call('ZADD', dueKey, retryAt, conversation)
emitEvent(eventsKey, 'retry_scheduled', label, now, 'batchId', batchId, 'attempt', attempt,
  'retryAt', string.format('%d', retryAt), 'error', lastError)
countEvent(statsKey, dailyKey, now, 'retries', 1)
return {'retry', retryAt, attempt, now}
