--[[
  readEvents: events of one partition after a cursor (a stream id).

  KEYS[1] events   STREAM partition events

  ARGV[1] afterId  stream id to read after; '' = return only the current last id (tail)
  ARGV[2] count    most events to return

  Returns
    {lastId, {{id, {field, value...}}...}}  lastId = id to read after next time
]]
local eventsKey = KEYS[1] -- STREAM events

local afterId = ARGV[1] -- stream id, '' = tail
local count = tonumber(ARGV[2]) -- events

if afterId == '' then
  local last = redis.call('XREVRANGE', eventsKey, '+', '-', 'COUNT', 1)
  if #last == 0 then return {'0-0', {}} end
  return {last[1][1], {}}
end

-- XRANGE's start is inclusive; skip the cursor entry itself (portable, unlike "(id").
local entries = redis.call('XRANGE', eventsKey, afterId, '+', 'COUNT', count + 1)
local out = {}
for _, e in ipairs(entries) do
  if e[1] ~= afterId and #out < count then out[#out + 1] = e end
end
local lastId = afterId
if #out > 0 then lastId = out[#out][1] end
return {lastId, out}
