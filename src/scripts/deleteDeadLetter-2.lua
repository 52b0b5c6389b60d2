--[[
  deleteDeadLetter: drop one dead letter for good.

  KEYS[1] deadLetter  HASH dead letter of this batchId
  KEYS[2] dlq         ZSET partition dead letters

  ARGV[1] batchId     dead batch to delete

  Returns
    1 deleted, 0 it was not there
]]
local deadLetterKey = KEYS[1] -- HASH dead letter
local dlqKey = KEYS[2] -- ZSET dead letters

local batchId = ARGV[1] -- dead batch id

local removed = redis.call('ZREM', dlqKey, batchId)
local deleted = redis.call('DEL', deadLetterKey)
if removed + deleted > 0 then return 1 end
return 0
