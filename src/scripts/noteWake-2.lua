--[[
  noteWake: lowers a partition's wake-up time, the sweep's O(1) entry point. The wake index holds,
  per partition, a lower bound of every score in its `due` and `leases`; the sweep visits only
  partitions whose wake-up has passed, so an idle deployment costs one read per heartbeat,
  whatever LULL_PARTITIONS is. Called whenever a due time can move earlier than the partition's
  bound: a new burst, a buffer that filled up, a retry, a requeue, a batch claimed by force.
  The epoch lets a sweep that recomputed the bound detect that someone lowered it meanwhile.

  KEYS[1] wake   ZSET partition -> wake-up ms (lower bound)
  KEYS[2] epoch  HASH partition -> number of noteWake calls

  ARGV[1] partition  partition number
  ARGV[2] atMs       a due or lease time in that partition, ms

  Returns
    the partition's epoch after this lowering, as a string
]]
local wakeKey = KEYS[1] -- ZSET partition -> wake-up ms
local epochKey = KEYS[2] -- HASH partition -> epoch

local partition = ARGV[1] -- partition number
local atMs = ARGV[2] -- ms

local epoch = redis.call('HINCRBY', epochKey, partition, 1)
redis.call('ZADD', wakeKey, 'LT', atMs, partition)
return tostring(epoch)
