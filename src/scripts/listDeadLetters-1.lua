--[[
  listDeadLetters: newest dead letters of one partition.

  KEYS[1] dlq    ZSET partition dead letters batchId -> deadAt ms

  ARGV[1] limit  most batch ids to return

  Returns
    {batchId, deadAtMs, batchId, deadAtMs...}  newest first
]]
local dlqKey = KEYS[1] -- ZSET dead letters

local limit = tonumber(ARGV[1]) -- batch ids

return redis.call('ZREVRANGE', dlqKey, 0, limit - 1, 'WITHSCORES')
