--[[
  reapExpiredLeases: conversations whose flush lease expired (crashed flusher) are made
  claimable again; the next claim takes the orphaned batch over. Events for them are written
  by the caller (recordEvent), because only TS can mask the conversation label.

  KEYS[1] leases  ZSET partition lease expiries
  KEYS[2] due     ZSET partition due index
  KEYS[3] stats   HASH partition counters
  KEYS[4] daily   HASH partition day counters

  ARGV[1] limit   most conversations to reap in one call

  Returns
    {nowMs, {conversation...}}
]]
local leasesKey = KEYS[1] -- ZSET leases
local dueKey = KEYS[2] -- ZSET due index
local statsKey = KEYS[3] -- HASH counters
local dailyKey = KEYS[4] -- HASH day counters

local limit = tonumber(ARGV[1]) -- conversations

--- @include "now"
--- @include "events"

local now = nowMs()
local expired = redis.call('ZRANGEBYSCORE', leasesKey, '-inf', now, 'LIMIT', 0, limit)
for _, conversation in ipairs(expired) do
  redis.call('ZREM', leasesKey, conversation)
  redis.call('ZADD', dueKey, now, conversation)
end
if #expired > 0 then countEvent(statsKey, dailyKey, now, 'reaped', #expired) end
return {now, expired}
