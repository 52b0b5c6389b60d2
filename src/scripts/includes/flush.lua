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

-- The open buffer's meta is a string of signed 64-bit fields that BITFIELD reads and writes, so
-- an append updates it in one command (it took HMGET and HSET while it was a hash):
--   #0 firstAt  #1 lastAt  #2 count  #3 bytes
--   #4 createdAt, #5 attempts, #6 counted: what a supersede carried over from its batch (0: none,
--      and absent when all three are: the string is then 32 bytes)
-- A meta written before 0.3 is a HASH with those field names. readMeta reads either form;
-- writeMeta replaces an old one.
local META_FIELDS = {'firstAt', 'lastAt', 'count', 'bytes', 'createdAt', 'attempts', 'counted'}

-- The open buffer's meta as numbers, or nil when there is no open buffer. `legacy`: a hash.
local function readMeta(metaKey)
  local r = redis.pcall('BITFIELD_RO', metaKey, 'GET', 'i64', '#0', 'GET', 'i64', '#1',
    'GET', 'i64', '#2', 'GET', 'i64', '#3', 'GET', 'i64', '#4', 'GET', 'i64', '#5',
    'GET', 'i64', '#6')
  local legacy = type(r) == 'table' and r.err ~= nil
  if legacy then r = redis.call('HMGET', metaKey, unpack(META_FIELDS)) end
  local v = {}
  for i = 1, #META_FIELDS do v[i] = tonumber(r[i]) or 0 end
  if v[1] == 0 then return nil end
  return {firstAt = v[1], lastAt = v[2], count = v[3], bytes = v[4], createdAt = v[5],
    attempts = v[6], counted = v[7], legacy = legacy}
end

-- A non-negative integer below 2^53 as the 8 big-endian bytes of a BITFIELD i64 field.
local function i64bytes(n)
  local b = {}
  for i = 8, 1, -1 do
    b[i] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(unpack(b))
end

-- Writes `meta` whole with one SET, which also replaces a meta of the old hash form. Without
-- carried-over fields only #0-#3 are written: 32 bytes, which Redis keeps in the key's own
-- allocation until an append's BITFIELD first changes it (56 bytes took a separate one). A read
-- past the end of the string is 0, which is what a missing carried field means.
local function writeMeta(metaKey, meta)
  local value = i64bytes(meta.firstAt) .. i64bytes(meta.lastAt) .. i64bytes(meta.count)
    .. i64bytes(meta.bytes)
  local createdAt, attempts, counted = meta.createdAt or 0, meta.attempts or 0, meta.counted or 0
  if createdAt ~= 0 or attempts ~= 0 or counted ~= 0 then
    value = value .. i64bytes(createdAt) .. i64bytes(attempts) .. i64bytes(counted)
  end
  redis.call('SET', metaKey, value)
end
