--[[
  appendMessage: dedup by provider message id, buffer the entry, update the open buffer's meta
  and the due index, arm the timer marker, write the event and counters. One round trip.
  Quotas (off by default) are checked first, atomically: a message over its conversation's or its
  provider's per-minute cap is refused before anything is written (not even its id), so the
  provider's retry after the window is a new message, not a duplicate.

  KEYS[1]  seen       ZSET provider message id -> first seen ms
  KEYS[2]  buffer     LIST open buffer entries
  KEYS[3]  meta       HASH firstAt, lastAt, count, bytes of the open buffer
  KEYS[4]  timer      STRING in-isolate timer marker
  KEYS[5]  batch      HASH outstanding batch (exists: buffer waits behind it)
  KEYS[6]  due        ZSET partition due index
  KEYS[7]  events     STREAM partition events
  KEYS[8]  stats      HASH partition counters
  KEYS[9]  daily      HASH partition day counters
  KEYS[10] convRate   STRING messages of this conversation in the current minute
  KEYS[11] provRate   STRING messages of this provider in this partition in the current minute

  ARGV[1]  conversation   raw conversation key (due index member)
  ARGV[2]  label          conversation as events show it (masked unless logPii)
  ARGV[3]  messageId      provider message id
  ARGV[4]  messageJson    encoded message (entry = now .. '|' .. messageJson)
  ARGV[5]  windowMs       quiet window, ms
  ARGV[6]  graceMs        grace re-check, ms
  ARGV[7]  maxWaitMs      cap from the first message, ms
  ARGV[8]  maxMessages    early flush by count
  ARGV[9]  maxBytes       early flush by bytes
  ARGV[10] timerTtlMs     timer marker TTL, ms
  ARGV[11] dedupTtlMs     message id memory, ms
  ARGV[12] convQuota      messages per minute per conversation (0 = no quota)
  ARGV[13] provQuota      messages per minute per provider in this partition (0 = no quota)

  The buffer and its meta carry no TTL (live data never expires); only `seen` and the timer
  marker do.

  Returns
    {'appended', size, flushAtMs, nowMs, armTimer (1|0), noteWake (1|0)}
    {'duplicate', size, flushAtMs (0 = no open buffer), nowMs, 0, noteWake (1|0)}
    {'refused', 'conversation'|'provider', retryAfterMs, nowMs}   over a quota; nothing written
  noteWake 1: the due index got an entry that may be earlier than the partition's wake-up (a new
  burst, a buffer that just filled up), so the caller must lower the wake-up (noteWake) before
  acknowledging. A duplicate of a message whose buffer is still open says 1 too: the first
  delivery of the webhook may have died between its append and its noteWake.
]]
local seenKey = KEYS[1] -- ZSET id -> first seen ms
local bufferKey = KEYS[2] -- LIST open buffer
local metaKey = KEYS[3] -- HASH open buffer meta
local timerKey = KEYS[4] -- STRING timer marker
local batchKey = KEYS[5] -- HASH outstanding batch
local dueKey = KEYS[6] -- ZSET due index
local eventsKey = KEYS[7] -- STREAM events
local statsKey = KEYS[8] -- HASH counters
local dailyKey = KEYS[9] -- HASH day counters
local convRateKey = KEYS[10] -- STRING this minute's count, conversation
local provRateKey = KEYS[11] -- STRING this minute's count, provider in this partition

local conversation = ARGV[1] -- raw conversation key
local label = ARGV[2] -- masked conversation label
local messageId = ARGV[3] -- provider message id
local messageJson = ARGV[4] -- encoded message
local windowMs = tonumber(ARGV[5]) -- ms
local graceMs = tonumber(ARGV[6]) -- ms
local maxWaitMs = tonumber(ARGV[7]) -- ms
local maxMessages = tonumber(ARGV[8]) -- count
local maxBytes = tonumber(ARGV[9]) -- bytes
local timerTtlMs = tonumber(ARGV[10]) -- ms
local dedupTtlMs = tonumber(ARGV[11]) -- ms
local convQuota = tonumber(ARGV[12]) -- messages per minute, 0 = off
local provQuota = tonumber(ARGV[13]) -- messages per minute, 0 = off

--- @include "now"
--- @include "flush"
--- @include "events"

local now = nowMs()

redis.call('ZREMRANGEBYSCORE', seenKey, '-inf', now - dedupTtlMs)
-- Quotas: fixed one-minute windows of store time. A duplicate is never refused (it is already
-- buffered, and answering it 2xx stops the redeliveries).
if (convQuota > 0 or provQuota > 0) and not redis.call('ZSCORE', seenKey, messageId) then
  local windowEnd = (math.floor(now / 60000) + 1) * 60000
  if convQuota > 0 and (tonumber(redis.call('GET', convRateKey)) or 0) >= convQuota then
    return {'refused', 'conversation', windowEnd - now, now}
  end
  if provQuota > 0 and (tonumber(redis.call('GET', provRateKey)) or 0) >= provQuota then
    return {'refused', 'provider', windowEnd - now, now}
  end
  if convQuota > 0 and redis.call('INCR', convRateKey) == 1 then
    redis.call('PEXPIREAT', convRateKey, windowEnd)
  end
  if provQuota > 0 and redis.call('INCR', provRateKey) == 1 then
    redis.call('PEXPIREAT', provRateKey, windowEnd)
  end
end
-- ZADD NX is the dedup test and the record in one command: 0 = the id was already seen.
if redis.call('ZADD', seenKey, 'NX', now, messageId) == 0 then
  local meta = readMeta(metaKey)
  local size, flushAt = 0, 0
  if meta then
    size = meta.count
    flushAt = computeFlush(meta, meta.lastAt, windowMs, graceMs, maxWaitMs, maxMessages, maxBytes)
  end
  emitEvent(eventsKey, 'duplicate', label, now, 'id', messageId)
  countEvent(statsKey, dailyKey, now, 'duplicates', 1)
  return {'duplicate', size, flushAt, now, 0, size > 0 and 1 or 0}
end
redis.call('PEXPIRE', seenKey, dedupTtlMs)

local entry = string.format('%d', now) .. '|' .. messageJson
redis.call('RPUSH', bufferKey, entry)
-- Read-modify-write of the meta in two commands (firstAt kept, lastAt/count/bytes updated):
-- the script is atomic, so this equals HSETNX + HSET + HINCRBY x2 at fewer commands.
local m = redis.call('HMGET', metaKey, 'firstAt', 'count', 'bytes')
local meta = {
  firstAt = tonumber(m[1]) or now,
  lastAt = now,
  count = (tonumber(m[2]) or 0) + 1,
  bytes = (tonumber(m[3]) or 0) + #entry
}
redis.call('HSET', metaKey, 'firstAt', meta.firstAt, 'lastAt', now, 'count', meta.count,
  'bytes', meta.bytes)
local flushAt = computeFlush(meta, now, windowMs, graceMs, maxWaitMs, maxMessages, maxBytes)

-- Queued behind an outstanding batch, the buffer stays reachable through that batch (in
-- `due` awaiting retry, or in `leases` in flight): ack/fail/supersede reschedule it.
local noteWake = 0
if redis.call('EXISTS', batchKey) == 0 then
  redis.call('ZADD', dueKey, flushAt, conversation)
  -- Later messages only move the due time later, which keeps the wake-up a lower bound.
  if meta.count == 1 or flushAt == now then noteWake = 1 end
end

local armTimer = 0
if redis.call('SET', timerKey, '1', 'NX', 'PX', timerTtlMs) then armTimer = 1 end

emitEvent(eventsKey, 'appended', label, now, 'id', messageId, 'size', meta.count)
countEvent(statsKey, dailyKey, now, 'ingested', 1)
return {'appended', meta.count, flushAt, now, armTimer, noteWake}
