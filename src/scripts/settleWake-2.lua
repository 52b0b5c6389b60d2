--[[
  settleWake: after a sweep visited a partition, set its wake-up to the recomputed earliest
  score (or drop it when nothing is left), unless a noteWake happened since the sweep read the
  epoch: then only lower it (the new bound may be earlier than what the sweep saw).

  KEYS[1] wake   ZSET partition -> wake-up ms
  KEYS[2] epoch  HASH partition -> epoch

  ARGV[1] partition  partition number
  ARGV[2] epoch      the epoch dueWakes returned for it
  ARGV[3] nextAtMs   nextDue's answer ('' : nothing left)

  Returns
    {earliestMs} of all partitions after the change, or {} when none
]]
local wakeKey = KEYS[1] -- ZSET partition -> wake-up ms
local epochKey = KEYS[2] -- HASH partition -> epoch

local partition = ARGV[1] -- partition number
local epoch = ARGV[2] -- epoch read by the sweep
local nextAt = tonumber(ARGV[3]) -- ms, or nil

if (redis.call('HGET', epochKey, partition) or '0') == epoch then
  if nextAt == nil then
    redis.call('ZREM', wakeKey, partition)
  else
    redis.call('ZADD', wakeKey, nextAt, partition)
  end
elseif nextAt ~= nil then
  redis.call('ZADD', wakeKey, 'LT', nextAt, partition)
end
local first = redis.call('ZRANGE', wakeKey, 0, 0, 'WITHSCORES')
if first[2] then return {tonumber(first[2])} end
return {}
