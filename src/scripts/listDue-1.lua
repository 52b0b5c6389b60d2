--[[
  listDue: conversations of one partition claimable now (due score <= now), oldest first.
  The due index is only an index: the claim re-checks everything.

  KEYS[1] due    ZSET partition due index

  ARGV[1] limit  most conversations to return

  Returns
    {nowMs, {conversation...}}
]]
local dueKey = KEYS[1] -- ZSET due index

local limit = tonumber(ARGV[1]) -- conversations

--- @include "now"

local now = nowMs()
return {now, redis.call('ZRANGEBYSCORE', dueKey, '-inf', now, 'LIMIT', 0, limit)}
