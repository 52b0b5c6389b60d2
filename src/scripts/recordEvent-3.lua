--[[
  recordEvent: write an event that happens outside the other scripts (fallback delivery, lock
  lost, reaped) and optionally count it.

  KEYS[1] events   STREAM partition events
  KEYS[2] stats    HASH partition counters
  KEYS[3] daily    HASH partition day counters

  ARGV[1] type     event type
  ARGV[2] label    masked conversation label
  ARGV[3] counter  counter to increment by 1, '' = none
  ARGV[4..] field, value pairs

  Returns
    nowMs
]]
local eventsKey = KEYS[1] -- STREAM events
local statsKey = KEYS[2] -- HASH counters
local dailyKey = KEYS[3] -- HASH day counters

local eventType = ARGV[1] -- event type
local label = ARGV[2] -- masked label
local counter = ARGV[3] -- counter name or ''

--- @include "now"
--- @include "events"

local now = nowMs()
emitEvent(eventsKey, eventType, label, now, unpack(ARGV, 4))
if counter ~= '' then countEvent(statsKey, dailyKey, now, counter, 1) end
return now
