-- The lock's value is `<token>|<batchId>|<count>`: the claim's token, the batch it was taken over
-- and that batch's size, so a step that presents the value learns which batch it holds without
-- reading the batch hash. Returns batchId, count; nil for a value without them (a plain token).
local function lockedBatch(held)
  local id, count = string.match(held, '^[^|]*|(.*)|(%d+)$')
  return id, tonumber(count)
end

-- Token and batch checks shared by every step that presents a lock token.
-- Returns 0 and the batch's size (nil if unknown) when the caller still owns the batch, else the
-- negative code to return.
local function checkOwner(lockKey, batchKey, token, batchId)
  local held = redis.call('GET', lockKey)
  if not held or held ~= token then return -1 end -- LOCK_LOST
  local id, count = lockedBatch(held)
  if id == nil then
    local b = redis.call('HMGET', batchKey, 'batchId', 'count')
    id, count = b[1], tonumber(b[2])
  end
  if id ~= batchId then return -2 end -- BATCH_NOT_FOUND
  return 0, count
end
