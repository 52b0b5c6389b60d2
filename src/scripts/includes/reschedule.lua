-- After a batch is gone (ack, dead letter): an open buffer that queued behind it gets its TTL
-- back and its place in the due index. Returns its flushAt, or nil if there is none.
-- Needs computeFlush/readMeta (flush include).
local function rescheduleOpenBuffer(metaKey, bufferKey, dueKey, conversation, now, bufferTtlMs,
                                    windowMs, graceMs, maxWaitMs, maxMessages, maxBytes)
  local meta = readMeta(metaKey)
  if not meta then
    redis.call('ZREM', dueKey, conversation)
    return nil
  end
  redis.call('PEXPIRE', bufferKey, bufferTtlMs)
  redis.call('PEXPIRE', metaKey, bufferTtlMs)
  local flushAt = computeFlush(meta, now, windowMs, graceMs, maxWaitMs, maxMessages, maxBytes)
  redis.call('ZADD', dueKey, flushAt, conversation)
  return flushAt
end
