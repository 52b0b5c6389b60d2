--[[
  requeueDeadLetter: put a dead batch back as the conversation's next batch: same batchId,
  new fence, attempt reset, reason requeue, claimable now. An open buffer waits behind it
  (reachable through the batch, which is in `due`; nothing carries a TTL).

  KEYS[1] deadLetter     HASH dead letter of this batchId
  KEYS[2] dlq            ZSET partition dead letters
  KEYS[3] batch          HASH outstanding batch of the conversation
  KEYS[4] batchMessages  LIST outstanding batch entries
  KEYS[5] fence          STRING fencing counter (no TTL: fences never go back)
  KEYS[6] due            ZSET partition due index
  KEYS[7] events         STREAM partition events

  ARGV[1] batchId        dead batch to requeue
  ARGV[2] conversation   its conversation (as read by the caller; re-checked here)
  ARGV[3] label          masked conversation label for events

  Returns
    {nowMs, fence}
    -3 DLQ_NOT_FOUND      no such dead letter (or it belongs to another conversation)
    -4 CONVERSATION_BUSY  the conversation has a batch outstanding
]]
local deadLetterKey = KEYS[1] -- HASH dead letter
local dlqKey = KEYS[2] -- ZSET dead letters
local batchKey = KEYS[3] -- HASH batch
local batchMessagesKey = KEYS[4] -- LIST batch entries
local fenceKey = KEYS[5] -- STRING fence counter
local dueKey = KEYS[6] -- ZSET due index
local eventsKey = KEYS[7] -- STREAM events

local batchId = ARGV[1] -- dead batch id
local conversation = ARGV[2] -- raw conversation key
local label = ARGV[3] -- masked label

--- @include "now"
--- @include "events"

local d = redis.call('HMGET', deadLetterKey, 'conversation', 'firstAt', 'lastAt', 'messages')
if not d[1] or d[1] ~= conversation then return -3 end
if redis.call('EXISTS', batchKey) == 1 then return -4 end
local now = nowMs()

local entries = cjson.decode(d[4] or '[]')
local bytes = 0
for _, entry in ipairs(entries) do bytes = bytes + #entry end
redis.call('DEL', batchMessagesKey)
local chunk = 1000
for i = 1, #entries, chunk do
  redis.call('RPUSH', batchMessagesKey, unpack(entries, i, math.min(i + chunk - 1, #entries)))
end
local fence = redis.call('INCR', fenceKey)
redis.call('HSET', batchKey,
  'batchId', batchId, 'conversation', conversation, 'fence', fence, 'attempt', 0,
  'reason', 'requeue', 'firstAt', d[2], 'lastAt', d[3], 'count', #entries, 'bytes', bytes,
  'createdAt', now, 'nextAt', 0, 'lastError', '', 'inFlight', '0')
redis.call('DEL', deadLetterKey)
redis.call('ZREM', dlqKey, batchId)
redis.call('ZADD', dueKey, now, conversation)
emitEvent(eventsKey, 'requeued', label, now, 'batchId', batchId, 'size', #entries)
return {now, fence}
