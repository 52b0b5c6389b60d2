--[[
  getDeadLetter: read one dead letter.

  KEYS[1] deadLetter  HASH dead letter of a batchId

  Returns
    {field, value...}  empty when there is no such dead letter
]]
local deadLetterKey = KEYS[1] -- HASH dead letter

return redis.call('HGETALL', deadLetterKey)
