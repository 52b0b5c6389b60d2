--[[
  inspectConversation: read-only snapshot of one conversation's pending state.

  KEYS[1] meta           HASH open buffer meta
  KEYS[2] buffer         LIST open buffer entries
  KEYS[3] batch          HASH outstanding batch
  KEYS[4] batchMessages  LIST outstanding batch entries
  KEYS[5] lock           STRING flush lock token
  KEYS[6] due            ZSET partition due index

  ARGV[1] conversation   raw conversation key (due index member)

  Returns
    {nowMs, {meta field, value...}, {buffer entries...}, {batch field, value...}, batchSize,
     locked (1|0), dueAtMs ('' = not indexed)}
]]
local metaKey = KEYS[1] -- HASH open buffer meta
local bufferKey = KEYS[2] -- LIST open buffer
local batchKey = KEYS[3] -- HASH batch
local batchMessagesKey = KEYS[4] -- LIST batch entries
local lockKey = KEYS[5] -- STRING lock token
local dueKey = KEYS[6] -- ZSET due index

local conversation = ARGV[1] -- raw conversation key

--- @include "now"

local now = nowMs()
return {
  now,
  redis.call('HGETALL', metaKey),
  redis.call('LRANGE', bufferKey, 0, -1),
  redis.call('HGETALL', batchKey),
  redis.call('LLEN', batchMessagesKey),
  redis.call('EXISTS', lockKey),
  redis.call('ZSCORE', dueKey, conversation) or ''
}
