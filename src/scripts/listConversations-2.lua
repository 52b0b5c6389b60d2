--[[
  listConversations: conversations of one partition with an open buffer or an outstanding
  batch: the union of the due index (buffers, retries) and the leases (in flight).

  KEYS[1] due     ZSET partition due index
  KEYS[2] leases  ZSET partition lease expiries

  ARGV[1] limit   most conversations to return

  Returns
    {conversation...}  due ones first (by due time), then in-flight ones
]]
local dueKey = KEYS[1] -- ZSET due index
local leasesKey = KEYS[2] -- ZSET leases

local limit = tonumber(ARGV[1]) -- conversations

local out, seen = {}, {}
for _, key in ipairs({dueKey, leasesKey}) do
  for _, conversation in ipairs(redis.call('ZRANGE', key, 0, limit - 1)) do
    if #out >= limit then return out end
    if not seen[conversation] then
      seen[conversation] = true
      out[#out + 1] = conversation
    end
  end
end
return out
