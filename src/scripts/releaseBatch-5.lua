--[[
  releaseBatch: give the batch back without counting an attempt (the claim never became a
  delivery, e.g. the isolate is shutting down); claimable again after delayMs.

  KEYS[1] lock    STRING flush lock token
  KEYS[2] batch   HASH outstanding batch
  KEYS[3] due     ZSET partition due index
  KEYS[4] leases  ZSET partition lease expiries
  KEYS[5] events  STREAM partition events

  ARGV[1] conversation  raw conversation key
  ARGV[2] label         masked conversation label for events
  ARGV[3] batchId       batch held
  ARGV[4] token         lock token from the claim
  ARGV[5] delayMs       claimable again after, ms

  Returns
    {nextAtMs, nowMs}
    -1 LOCK_LOST        lock missing or held by another token
    -2 BATCH_NOT_FOUND  batchId is not the conversation's current batch
]]
local lockKey = KEYS[1] -- STRING lock token
local batchKey = KEYS[2] -- HASH batch
local dueKey = KEYS[3] -- ZSET due index
local leasesKey = KEYS[4] -- ZSET leases
local eventsKey = KEYS[5] -- STREAM events

local conversation = ARGV[1] -- raw conversation key
local label = ARGV[2] -- masked label
local batchId = ARGV[3] -- batch id
local token = ARGV[4] -- lock token
local delayMs = tonumber(ARGV[5]) -- ms

--- @include "now"
--- @include "events"
--- @include "lock"

local owner = checkOwner(lockKey, batchKey, token, batchId)
if owner ~= 0 then return owner end
local now = nowMs()
local nextAt = now + delayMs
redis.call('HINCRBY', batchKey, 'attempt', -1)
redis.call('HSET', batchKey, 'nextAt', nextAt, 'inFlight', '0')
redis.call('DEL', lockKey)
redis.call('ZREM', leasesKey, conversation)
redis.call('ZADD', dueKey, nextAt, conversation)
emitEvent(eventsKey, 'released', label, now, 'batchId', batchId)
return {nextAt, now}
