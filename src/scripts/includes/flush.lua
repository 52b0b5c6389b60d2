-- Flush rules as the caller packs them (one ARGV): "windowMs,graceMs,maxWaitMs,maxMessages,maxBytes".
local function decodeRules(packed)
  local w, g, mw, mm, mb = string.match(packed, '^(%d+),(%d+),(%d+),(%d+),(%d+)$')
  if not w then error('lull: bad flush rules ' .. tostring(packed)) end
  return {windowMs = tonumber(w), graceMs = tonumber(g), maxWaitMs = tonumber(mw),
    maxMessages = tonumber(mm), maxBytes = tonumber(mb)}
end

-- Due time and reason of an open buffer (docs/state-machine.md "Buffer due time").
-- fullAt: when a full buffer became claimable (the append's now, or now when rescheduling).
local function computeFlush(meta, fullAt, rules)
  if meta.count >= rules.maxMessages then return fullAt, 'max_messages' end
  if meta.bytes >= rules.maxBytes then return fullAt, 'max_bytes' end
  local quietDue = meta.lastAt + rules.windowMs + rules.graceMs
  local capDue = meta.firstAt + rules.maxWaitMs
  if capDue <= quietDue then return capDue, 'max_wait' end
  return quietDue, 'quiet'
end

-- The open buffer's meta as numbers, or nil when there is no open buffer.
local function readMeta(metaKey)
  local m = redis.call('HMGET', metaKey, 'firstAt', 'lastAt', 'count', 'bytes')
  if not m[1] then return nil end
  return {
    firstAt = tonumber(m[1]),
    lastAt = tonumber(m[2]),
    count = tonumber(m[3]) or 0,
    bytes = tonumber(m[4]) or 0
  }
end
