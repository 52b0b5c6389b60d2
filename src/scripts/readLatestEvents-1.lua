--[[
  readLatestEvents: the newest events of one partition, newest first (XREVRANGE), optionally of
  one type only, with the stream's last id so a reader can follow on with readEvents from there.
  Read-only. Filtering by type walks back page by page and stops after scanMax entries, so even a
  stream without a single event of that type costs a bounded read.

  KEYS[1] events   STREAM partition events

  ARGV[1] count    most events to return
  ARGV[2] type     only events of this type; '' = every type
  ARGV[3] scanMax  most stream entries to look at when filtering by type

  Returns
    {lastId, {{id, {field, value...}}...}}  events newest first; lastId = the stream's newest id
                                            ('0-0' when the stream is empty)
]]
local eventsKey = KEYS[1] -- STREAM events

local count = tonumber(ARGV[1]) -- events
local eventType = ARGV[2] -- event type, '' = any
local scanMax = tonumber(ARGV[3]) -- stream entries

local PAGE = 200

local newest = redis.call('XREVRANGE', eventsKey, '+', '-', 'COUNT', 1)
if #newest == 0 then return {'0-0', {}} end
local lastId = newest[1][1]
if eventType == '' then
  return {lastId, redis.call('XREVRANGE', eventsKey, '+', '-', 'COUNT', count)}
end

local function typeOf(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'type' then return fields[i + 1] end
  end
  return nil
end

-- XREVRANGE's end is inclusive; each page after the first starts at the previous page's last
-- entry and skips it (portable, unlike "(id").
local out = {}
local scanned = 0
local from = '+'
while #out < count and scanned < scanMax do
  local entries = redis.call('XREVRANGE', eventsKey, from, '-', 'COUNT', PAGE)
  for _, e in ipairs(entries) do
    if e[1] ~= from then
      scanned = scanned + 1
      if typeOf(e[2]) == eventType then out[#out + 1] = e end
      if #out >= count or scanned >= scanMax then break end
    end
  end
  if #entries < PAGE then break end
  from = entries[#entries][1]
end
return {lastId, out}
