-- Token and batch checks shared by every step that presents a lock token.
-- Returns 0 when the caller still owns the batch, else the negative code to return.
local function checkOwner(lockKey, batchKey, token, batchId)
  local held = redis.call('GET', lockKey)
  if not held or held ~= token then return -1 end -- LOCK_LOST
  if redis.call('HGET', batchKey, 'batchId') ~= batchId then return -2 end -- BATCH_NOT_FOUND
  return 0
end
