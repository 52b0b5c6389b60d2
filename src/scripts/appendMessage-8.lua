--[[
  appendMessage: dedup by provider message id and buffer the entry, in one round trip and as few
  commands as the flush rules allow (Upstash bills each one): a new message into an open buffer
  costs ZADD, TIME, RPUSH and one BITFIELD on the meta; a duplicate ZADD, HINCRBY and LINDEX (no
  TIME: see ARGV[9]).
  Quotas (off by default) are checked first, atomically: a message over its conversation's or its
  provider's per-minute cap is refused before anything is written (not even its id), so the
  provider's retry after the window is a new message, not a duplicate.

  The due index is written only when a burst starts or fills up. Later messages move the due
  time later, never earlier, so the entry stays a lower bound: whoever visits it early (timer or
  sweep) finds the buffer not due and re-scores it from the meta (claimDueBuffer). A burst that
  queues behind an outstanding batch is indexed too (ZADD NX keeps the retry's time; a claim that
  finds the batch in flight moves the entry to the lease's end), so it never depends on the
  batch's ack to be found. Counters of ingested messages are added when the burst becomes a
  batch; per-message events are optional.

  KEYS[1]  seen       ZSET provider message id -> first seen ms
  KEYS[2]  buffer     LIST open buffer entries
  KEYS[3]  meta       STRING BITFIELD firstAt, lastAt, count, bytes of the open buffer (flush.lua)
  KEYS[4]  due        ZSET partition due index
  KEYS[5]  events     STREAM partition events
  KEYS[6]  daily      HASH partition day counters
  KEYS[7]  convRate   STRING messages of this conversation in the current minute
  KEYS[8]  provRate   STRING messages of this provider in this partition in the current minute

  ARGV[1]  conversation   raw conversation key (due index member)
  ARGV[2]  label          conversation as events show it (masked unless logPii)
  ARGV[3]  messageId      provider message id
  ARGV[4]  messageJson    encoded message (entry = now .. '|' .. messageJson)
  ARGV[5]  flushRules     windowMs,graceMs,maxWaitMs,maxMessages,maxBytes, packed
  ARGV[6]  convQuota      messages per minute per conversation (0 = no quota)
  ARGV[7]  provQuota      messages per minute per provider in this partition (0 = no quota)
  ARGV[8]  messageEvents  "1": also write an `appended`/`duplicate` event per message
  ARGV[9]  callerMs       the caller's clock, ms. Plus a second, it is the dedup record's
                          provisional score: ZADD NX is the dedup test, so the score is given
                          before the script knows whether it needs TIME. A new id then reads TIME
                          anyway (its entry needs store time) and re-scores the record unless the
                          provisional score lies in [store time, store time + 60 s]: a record is
                          never scored before its arrival in store time, so no clock skew can
                          shorten the dedup window, and a fast clock keeps an id at most a minute
                          longer. A duplicate reads no TIME at all: its counter's day bucket is
                          the caller's day (a statistic, not a flush rule), and so is a duplicate
                          event's `at`.

  The buffer and its meta carry no TTL (live data never expires). Neither does `seen` while its
  conversation has an open buffer; the claim that empties the buffer gives it LULL_DEDUP_TTL_MS
  and drops ids older than that.

  Returns
    {'appended', size, flushAtMs, nowMs, armTimer (1|0), noteWake (1|0)}
    {'duplicate', size, flushAtMs, nowMs, 0, noteWake (1|0)}   size 0 and flushAtMs 0 unless the
                                                             id opened the open buffer
    {'refused', 'conversation'|'provider', retryAfterMs, nowMs}   over a quota; nothing written
  armTimer 1: this append opened the burst (RPUSH made the list), so this caller arms the one
  in-isolate timer of the burst.
  noteWake 1: the due index got an entry that may be earlier than the partition's wake-up (a new
  burst, a buffer that just filled up), so the caller must lower the wake-up (noteWake) before
  acknowledging. A redelivery of the id that opened the open buffer says 1 again: the first
  delivery may have died between its append and noteWake. (The append that filled a buffer is not
  re-noted: the wake-up its burst's opener noted is earlier, so the sweep comes by then anyway.)
]]
local seenKey = KEYS[1] -- ZSET id -> first seen ms
local bufferKey = KEYS[2] -- LIST open buffer
local metaKey = KEYS[3] -- STRING open buffer meta
local dueKey = KEYS[4] -- ZSET due index
local eventsKey = KEYS[5] -- STREAM events
local dailyKey = KEYS[6] -- HASH day counters
local convRateKey = KEYS[7] -- STRING this minute's count, conversation
local provRateKey = KEYS[8] -- STRING this minute's count, provider in this partition

local conversation = ARGV[1] -- raw conversation key
local label = ARGV[2] -- masked conversation label
local messageId = ARGV[3] -- provider message id
local messageJson = ARGV[4] -- encoded message
local packedRules = ARGV[5] -- flush rules, packed
local convQuota = tonumber(ARGV[6]) -- messages per minute, 0 = off
local provQuota = tonumber(ARGV[7]) -- messages per minute, 0 = off
local messageEvents = ARGV[8] == '1' -- per-message events
local callerMs = tonumber(ARGV[9]) -- caller's clock, ms

--- @include "now"
--- @include "flush"
--- @include "events"

local rules = decodeRules(packedRules)
local now = nil

-- Quotas: fixed one-minute windows of store time. A duplicate is never refused (it is already
-- buffered, and answering it 2xx stops the redeliveries).
if (convQuota > 0 or provQuota > 0) and not redis.call('ZSCORE', seenKey, messageId) then
  now = nowMs()
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
if not callerMs then now = now or nowMs() end
local provisional = now or callerMs + 1000 -- a clock a little behind still scores after arrival
if redis.call('ZADD', seenKey, 'NX', provisional, messageId) == 0 then
  local at = now or callerMs
  redis.call('HINCRBY', dailyKey, string.format('%d:duplicates', math.floor(at / 86400000)), 1)
  if messageEvents then emitEvent(eventsKey, 'duplicate', label, at, 'id', messageId) end
  -- The redelivery of the message that opened the open buffer: its first delivery noted a wake,
  -- or died before it could. An entry is `<ms>|<message json>`.
  local head = redis.call('LINDEX', bufferKey, 0)
  local sep = head and string.find(head, '|', 1, true)
  local ok, first = false, nil
  if sep then ok, first = pcall(cjson.decode, string.sub(head, sep + 1)) end
  if not ok or type(first) ~= 'table' or first.id ~= messageId then
    return {'duplicate', 0, 0, at, 0, 0}
  end
  local meta = readMeta(metaKey)
  if not meta then return {'duplicate', 0, 0, at, 0, 0} end
  return {'duplicate', meta.count, computeFlush(meta, meta.lastAt, rules), at, 0, 1}
end
-- A new id. Scored on store time (re-scored when the caller's clock is behind, or far ahead), so
-- the claim's trim of ids past the window never depends on an isolate clock.
if not now then
  now = nowMs()
  if provisional < now or provisional > now + 60000 then
    redis.call('ZADD', seenKey, 'XX', now, messageId)
  end
end

local entry = string.format('%d', now) .. '|' .. messageJson
local size = redis.call('RPUSH', bufferKey, entry)
local meta
local wasFull = false
if size == 1 then
  -- A new burst. Its ids stay remembered for as long as the buffer is open.
  meta = {firstAt = now, lastAt = now, count = 1, bytes = #entry}
  writeMeta(metaKey, meta)
  redis.call('PERSIST', seenKey)
else
  -- One command reads firstAt, counts the entry and moves lastAt.
  local r = redis.pcall('BITFIELD', metaKey, 'GET', 'i64', '#0', 'INCRBY', 'i64', '#2', 1,
    'INCRBY', 'i64', '#3', #entry, 'SET', 'i64', '#1', now)
  if r.err then
    -- A meta from before 0.3 (a hash): carried over into the string form, once.
    meta = readMeta(metaKey) or {firstAt = now, count = 0, bytes = 0}
    meta.lastAt, meta.count, meta.bytes = now, meta.count + 1, meta.bytes + #entry
    writeMeta(metaKey, meta)
  else
    meta = {firstAt = r[1], lastAt = now, count = r[2], bytes = r[3]}
    if meta.firstAt == 0 then
      -- No meta beside a buffer (lost outside lull): this message starts its clock.
      meta.firstAt = now
      redis.call('BITFIELD', metaKey, 'SET', 'i64', '#0', now)
    end
  end
  wasFull = meta.count - 1 >= rules.maxMessages or meta.bytes - #entry >= rules.maxBytes
end
local flushAt = computeFlush(meta, now, rules)

-- A burst's first message indexes it, also when it queues behind an outstanding batch: NX keeps
-- a retry's time, and a claim that finds the batch in flight moves the entry to the lease's end.
-- The message that fills a buffer lowers its entry to now.
local noteWake = 0
if size == 1 then
  noteWake = redis.call('ZADD', dueKey, 'NX', flushAt, conversation)
elseif flushAt == now and not wasFull then
  noteWake = redis.call('ZADD', dueKey, 'LT', 'CH', flushAt, conversation)
end

if messageEvents then
  emitEvent(eventsKey, 'appended', label, now, 'id', messageId, 'size', meta.count)
end
return {'appended', meta.count, flushAt, now, size == 1 and 1 or 0, noteWake}
