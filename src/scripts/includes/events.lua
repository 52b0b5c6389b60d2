-- Counter names (src/core/types.ts CounterName); the daily hash drops day-8 of each.
local COUNTERS = {'ingested', 'duplicates', 'batches', 'batch_messages', 'retries', 'dead',
  'superseded', 'reaped', 'fallbacks'}

-- Appends one event to the partition's capped stream. Extra fields come as name, value pairs.
local function emitEvent(eventsKey, eventType, label, now, ...)
  redis.call('XADD', eventsKey, 'MAXLEN', '~', 10000, '*', 'type', eventType, 'conv', label,
    'at', string.format('%d', now), ...)
end

-- Adds n to a counter's total and to today's bucket. The day's first `ingested` also drops
-- the buckets of day-8, so the daily hash never grows past about a week.
local function countEvent(statsKey, dailyKey, now, counter, n)
  redis.call('HINCRBY', statsKey, counter, n)
  local day = math.floor(now / 86400000)
  local v = redis.call('HINCRBY', dailyKey, string.format('%d:%s', day, counter), n)
  if counter == 'ingested' and v == n then
    for _, c in ipairs(COUNTERS) do
      redis.call('HDEL', dailyKey, string.format('%d:%s', day - 8, c))
    end
  end
end
