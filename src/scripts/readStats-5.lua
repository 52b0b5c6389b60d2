--[[
  readStats: counters and sizes of one partition.

  KEYS[1] stats   HASH partition counters
  KEYS[2] daily   HASH partition day counters
  KEYS[3] due     ZSET partition due index
  KEYS[4] leases  ZSET partition lease expiries
  KEYS[5] dlq     ZSET partition dead letters

  Returns
    {nowMs, {counter, total...}, {day:counter, count...}, dueSize, leasesSize, dlqSize}
]]
local statsKey = KEYS[1] -- HASH counters
local dailyKey = KEYS[2] -- HASH day counters
local dueKey = KEYS[3] -- ZSET due index
local leasesKey = KEYS[4] -- ZSET leases
local dlqKey = KEYS[5] -- ZSET dead letters

--- @include "now"

return {
  nowMs(),
  redis.call('HGETALL', statsKey),
  redis.call('HGETALL', dailyKey),
  redis.call('ZCARD', dueKey),
  redis.call('ZCARD', leasesKey),
  redis.call('ZCARD', dlqKey)
}
