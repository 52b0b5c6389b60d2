--[[
  purgeConversation: a privacy request. Removes everything of one conversation in its slot:
  the open buffer, a batch awaiting retry, the dedup ids, its due entry, and
  every event naming the raw conversation key (events written with LULL_LOG_PII; masked labels
  name no one). Refuses while a batch is in flight (lock held): the purge would race the
  delivery, so the caller retries once it settled. The fence is KEPT: fences never go back,
  and a later message from the same person must get a higher fence than anything delivered.
  Dead letters are removed by the caller afterwards (deleteDeadLetter), which is safe because
  with the batch gone no new dead letter of the old data can appear.

  KEYS[1]  seen           ZSET dedup ids
  KEYS[2]  buffer         LIST open buffer
  KEYS[3]  meta           STRING open buffer meta (BITFIELD, includes/flush.lua)
  KEYS[4]  lock           STRING flush lock token
  KEYS[5]  batch          HASH outstanding batch
  KEYS[6]  batchMessages  LIST outstanding batch entries
  KEYS[7]  due            ZSET partition due index
  KEYS[8]  leases         ZSET partition lease expiries
  KEYS[9]  events         STREAM partition events

  ARGV[1]  conversation   raw conversation key

  Returns
    {buffered, batchMessages, dedupIds, events}  what was removed (counts)
    -4 CONVERSATION_BUSY  a batch is in flight (lock held)
]]
local seenKey = KEYS[1] -- ZSET dedup ids
local bufferKey = KEYS[2] -- LIST buffer
local metaKey = KEYS[3] -- HASH meta
local lockKey = KEYS[4] -- STRING lock
local batchKey = KEYS[5] -- HASH batch
local batchMessagesKey = KEYS[6] -- LIST batch entries
local dueKey = KEYS[7] -- ZSET due index
local leasesKey = KEYS[8] -- ZSET leases
local eventsKey = KEYS[9] -- STREAM events

local conversation = ARGV[1] -- raw conversation key

if redis.call('EXISTS', lockKey) == 1 then return -4 end

local buffered = redis.call('LLEN', bufferKey)
local batchMessages = redis.call('LLEN', batchMessagesKey)
local dedupIds = redis.call('ZCARD', seenKey)
redis.call('DEL', seenKey, bufferKey, metaKey, batchKey, batchMessagesKey)
redis.call('ZREM', dueKey, conversation)
redis.call('ZREM', leasesKey, conversation)

-- The stream is capped (MAXLEN ~ 10000), so one pass over it is bounded.
local removed = 0
local entries = redis.call('XRANGE', eventsKey, '-', '+')
for _, e in ipairs(entries) do
  local fields = e[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'conv' then
      if fields[i + 1] == conversation then
        redis.call('XDEL', eventsKey, e[1])
        removed = removed + 1
      end
      break
    end
  end
end
return {buffered, batchMessages, dedupIds, removed}
