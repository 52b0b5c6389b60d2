--[[
  inspectConversation: read-only snapshot of one conversation's pending state.

  KEYS[1] meta           STRING open buffer meta (BITFIELD, includes/flush.lua)
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
local metaKey = KEYS[1] -- STRING open buffer meta
local bufferKey = KEYS[2] -- LIST open buffer
local batchKey = KEYS[3] -- HASH batch
local batchMessagesKey = KEYS[4] -- LIST batch entries
local lockKey = KEYS[5] -- STRING lock token
local dueKey = KEYS[6] -- ZSET due index

local conversation = ARGV[1] -- raw conversation key

--- @include "now"
--- @include "flush"

local now = nowMs()
-- The meta as field, value pairs (the carried-over fields only when set).
local metaPairs = {}
local meta = readMeta(metaKey)
if meta then
  for _, field in ipairs(META_FIELDS) do
    if meta[field] ~= 0 or field == 'count' or field == 'bytes' then
      metaPairs[#metaPairs + 1] = field
      metaPairs[#metaPairs + 1] = string.format('%d', meta[field])
    end
  end
end
return {
  now,
  metaPairs,
  redis.call('LRANGE', bufferKey, 0, -1),
  redis.call('HGETALL', batchKey),
  redis.call('LLEN', batchMessagesKey),
  redis.call('EXISTS', lockKey),
  redis.call('ZSCORE', dueKey, conversation) or ''
}
