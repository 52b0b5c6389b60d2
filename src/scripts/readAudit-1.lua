--[[
  readAudit: the newest audit entries, newest first.

  KEYS[1]  audit   STREAM audit log of this key prefix

  ARGV[1]  count   most entries to return

  Returns
    {{id, {field, value...}}...}  newest first
]]
local auditKey = KEYS[1] -- STREAM audit log

local count = tonumber(ARGV[1]) -- entries

return redis.call('XREVRANGE', auditKey, '+', '-', 'COUNT', count)
