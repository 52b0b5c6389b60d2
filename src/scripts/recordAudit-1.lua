--[[
  recordAudit: appends one admin action to the prefix's audit stream and trims it to its
  retention: entries older than retentionMs and beyond maxEntries are dropped.

  KEYS[1]  audit         STREAM audit log of this key prefix (its own hash slot)

  ARGV[1]  retentionMs   how long an entry is kept, ms
  ARGV[2]  maxEntries    most entries kept (approximate trim)
  ARGV[3]  actor         who: "token:<fingerprint>" or "cli:<os user>", never a secret
  ARGV[4]  action        what: dlq_requeue, dlq_delete, flush, sweep, purge_conversation
  ARGV[5]  target        batch id, masked conversation label, or ""
  ARGV[6]  result        ok, not_found, busy, error, ...
  ARGV[7]  detail        free text (counts, error message), may be ""
  ARGV[8]  subject       fingerprint of the conversation acted on, or ""

  Returns
    {id, nowMs}  the new entry's stream id and the store time it was written
]]
local auditKey = KEYS[1] -- STREAM audit log

local retentionMs = tonumber(ARGV[1]) -- ms
local maxEntries = tonumber(ARGV[2]) -- entries
local actor = ARGV[3] -- fingerprint, never a secret
local action = ARGV[4] -- action name
local target = ARGV[5] -- batch id or masked label
local result = ARGV[6] -- outcome
local detail = ARGV[7] -- free text
local subject = ARGV[8] -- conversation fingerprint

--- @include "now"

local now = nowMs()
local id = redis.call('XADD', auditKey, 'MAXLEN', '~', maxEntries, '*', 'at',
  string.format('%d', now), 'actor', actor, 'action', action, 'target', target, 'result', result,
  'detail', detail, 'subject', subject)
-- Stream ids start with their ms: everything older than the retention goes (Redis >= 6.2).
redis.call('XTRIM', auditKey, 'MINID', string.format('%d', math.max(0, now - retentionMs)))
return {id, now}
