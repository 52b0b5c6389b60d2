-- After a batch is gone (ack, dead letter): an open buffer that queued behind it gets its
-- place in the due index back. Returns its flushAt, or nil if there is none. Live data never
-- carries a TTL, so nothing else changes. Needs computeFlush/readMeta (flush include).
local function rescheduleOpenBuffer(metaKey, dueKey, conversation, now, rules)
  local meta = readMeta(metaKey)
  if not meta then
    redis.call('ZREM', dueKey, conversation)
    return nil
  end
  local flushAt = computeFlush(meta, now, rules)
  redis.call('ZADD', dueKey, flushAt, conversation)
  return flushAt
end
