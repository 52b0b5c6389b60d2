--[[
  checkLayout: the partition count is part of the data layout (it decides which partition's due
  index, leases and DLQ hold a conversation), so it is recorded in Redis on first use and every
  isolate compares its LULL_PARTITIONS with it. A changed count would orphan outstanding batches
  and their queued buffers in partitions nobody sweeps: the caller refuses to run instead.

  KEYS[1] layout      HASH partitions, version (one per key prefix)

  ARGV[1] partitions  LULL_PARTITIONS of the caller
  ARGV[2] version     data layout version of the caller

  Returns
    {recordedPartitions, recordedVersion, created (1|0)}
]]
local layoutKey = KEYS[1] -- HASH partitions, version

local partitions = ARGV[1] -- count, as a decimal string
local version = ARGV[2] -- layout version

local created = redis.call('HSETNX', layoutKey, 'partitions', partitions)
if created == 1 then redis.call('HSET', layoutKey, 'version', version) end
local recorded = redis.call('HMGET', layoutKey, 'partitions', 'version')
return {tonumber(recorded[1]), tonumber(recorded[2]) or 0, created}
