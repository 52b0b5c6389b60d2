--[[
  reindexConversation: the repair step for one conversation found by a scan. The scripts keep
  every live buffer and batch reachable from `due` or `leases`; only data loss outside lull (a key
  deleted by hand, a failover that lost writes) can leave one unreachable. This puts it back:
  a batch in neither index becomes due now; an open buffer with no batch and no due entry gets
  its computed due time.

  KEYS[1] meta    STRING open buffer meta (BITFIELD, includes/flush.lua)
  KEYS[2] buffer  LIST open buffer entries
  KEYS[3] batch   HASH outstanding batch
  KEYS[4] due     ZSET partition due index
  KEYS[5] leases  ZSET partition lease expiries

  ARGV[1] conversation  raw conversation key
  ARGV[2]   flushRules   windowMs,graceMs,maxWaitMs,maxMessages,maxBytes, packed

  Returns
    'ok'         reachable already (or nothing live)
    'batch'      an unreachable batch was made due now
    'buffer'     an unreachable open buffer was given its due time
]]
local metaKey = KEYS[1] -- STRING open buffer meta
local bufferKey = KEYS[2] -- LIST open buffer
local batchKey = KEYS[3] -- HASH batch
local dueKey = KEYS[4] -- ZSET due index
local leasesKey = KEYS[5] -- ZSET leases

local conversation = ARGV[1] -- raw conversation key
local packedRules = ARGV[2] -- flush rules, packed

--- @include "now"
--- @include "flush"

local rules = decodeRules(packedRules)

if redis.call('ZSCORE', dueKey, conversation) or redis.call('ZSCORE', leasesKey, conversation) then
  return 'ok'
end
local now = nowMs()
if redis.call('EXISTS', batchKey) == 1 then
  redis.call('ZADD', dueKey, now, conversation)
  return 'batch'
end
local meta = readMeta(metaKey)
if meta and redis.call('EXISTS', bufferKey) == 1 then
  local flushAt = computeFlush(meta, now, rules)
  redis.call('ZADD', dueKey, flushAt, conversation)
  return 'buffer'
end
return 'ok'
