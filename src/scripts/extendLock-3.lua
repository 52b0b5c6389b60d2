--[[
  extendLock: renew the flush lock's lease to now + lockTtlMs (the flusher renews at half).

  KEYS[1] lock    STRING flush lock token
  KEYS[2] batch   HASH outstanding batch
  KEYS[3] leases  ZSET partition lease expiries

  ARGV[1] conversation  raw conversation key (leases member)
  ARGV[2] batchId       batch held
  ARGV[3] token         lock token from the claim
  ARGV[4] lockTtlMs     lease length, ms

  Returns
    leaseUntilMs
    -1 LOCK_LOST        lock missing or held by another token
    -2 BATCH_NOT_FOUND  batchId is not the conversation's current batch
]]
local lockKey = KEYS[1] -- STRING lock token
local batchKey = KEYS[2] -- HASH batch
local leasesKey = KEYS[3] -- ZSET leases

local conversation = ARGV[1] -- raw conversation key
local batchId = ARGV[2] -- batch id
local token = ARGV[3] -- lock token
local lockTtlMs = tonumber(ARGV[4]) -- ms

--- @include "now"
--- @include "lock"

local owner = checkOwner(lockKey, batchKey, token, batchId)
if owner ~= 0 then return owner end
local now = nowMs()
local leaseUntil = now + lockTtlMs
redis.call('PEXPIRE', lockKey, lockTtlMs)
redis.call('ZADD', leasesKey, leaseUntil, conversation)
return leaseUntil
