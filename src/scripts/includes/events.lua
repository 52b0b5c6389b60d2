-- Appends one event to the partition's capped stream. Extra fields come as name, value pairs.
local function emitEvent(eventsKey, eventType, label, now, ...)
  redis.call('XADD', eventsKey, 'MAXLEN', '~', 10000, '*', 'type', eventType, 'conv', label,
    'at', string.format('%d', now), ...)
end

-- Counters live in day buckets (`<day>:<counter>` in the daily hash); `stats` holds only what was
-- folded out of buckets older than a week, so a total is `stats` + every bucket, and counting
-- costs one HINCRBY. The day's first `ingested` folds the old buckets (once a day).
local function foldOldDays(statsKey, dailyKey, day)
  local all = redis.call('HGETALL', dailyKey)
  for i = 1, #all, 2 do
    local d, c = string.match(all[i], '^(%-?%d+):(.+)$')
    if d and tonumber(d) < day - 7 then
      redis.call('HINCRBY', statsKey, c, tonumber(all[i + 1]) or 0)
      redis.call('HDEL', dailyKey, all[i])
    end
  end
end

-- Adds n to a counter in the bucket of the day of `now` (ms).
local function countEvent(statsKey, dailyKey, now, counter, n)
  local day = math.floor(now / 86400000)
  local v = redis.call('HINCRBY', dailyKey, string.format('%d:%s', day, counter), n)
  if counter == 'ingested' and v == n then foldOldDays(statsKey, dailyKey, day) end
end
