--[[
  nextDue: the earliest score in a partition's due index and leases: when the sweep next has
  something to do there (a due buffer or retry, or a lease to reap).

  KEYS[1] due     ZSET partition due index
  KEYS[2] leases  ZSET partition lease expiries

  Returns
    {earliestMs}, or {} when both are empty (never a negative number: those are error codes)
]]
local dueKey = KEYS[1] -- ZSET due index
local leasesKey = KEYS[2] -- ZSET leases

local best = nil
for _, key in ipairs({dueKey, leasesKey}) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[2] then
    local score = tonumber(first[2])
    if best == nil or score < best then best = score end
  end
end
if best == nil then return {} end
return {best}
