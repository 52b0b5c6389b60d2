--[[
  readWakeEpoch: how many lowerings (noteWake) a partition's wake-up has seen. A timer that
  delivered its burst compares it with the epoch its own lowering left, and settles the wake-up
  only when nobody lowered it since (else the sweep that lowering asked for settles it).

  KEYS[1] epoch  HASH partition -> epoch

  ARGV[1] partition  partition number

  Returns
    the epoch, as a string ('0': never lowered)
]]
local epochKey = KEYS[1] -- HASH partition -> epoch

local partition = ARGV[1] -- partition number

return redis.call('HGET', epochKey, partition) or '0'
