--[[
  dueWakes: the partitions a sweep must visit now (wake-up passed), with their epochs. With
  nothing buffered, pending or leased the wake index is empty and this is the whole sweep.

  KEYS[1] wake   ZSET partition -> wake-up ms
  KEYS[2] epoch  HASH partition -> epoch

  ARGV[1] limit  most partitions to return

  Returns
    {nowMs, {partition, epoch, partition, epoch, ...}, {earliestWakeMs} or {} (none at all)}
]]
local wakeKey = KEYS[1] -- ZSET partition -> wake-up ms
local epochKey = KEYS[2] -- HASH partition -> epoch

local limit = tonumber(ARGV[1]) -- partitions

--- @include "now"

local now = nowMs()
local first = redis.call('ZRANGE', wakeKey, 0, 0, 'WITHSCORES')
if not first[2] then return {now, {}, {}} end
local earliest = tonumber(first[2])
if earliest > now then return {now, {}, {earliest}} end
local due = redis.call('ZRANGEBYSCORE', wakeKey, '-inf', now, 'LIMIT', 0, limit)
local out = {}
local epochs = redis.call('HMGET', epochKey, unpack(due))
for i, partition in ipairs(due) do
  out[#out + 1] = partition
  out[#out + 1] = epochs[i] or '0'
end
return {now, out, {earliest}}
