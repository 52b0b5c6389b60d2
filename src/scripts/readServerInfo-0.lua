--[[
  readServerInfo: what decides whether Redis can keep lull's promise — its eviction policy
  (allkeys-* may evict live buffers and batches, which carry no TTL) and its persistence (AOF).
  A script because adapters only speak EVAL/EVALSHA; `redis.pcall` because some hosted Redis
  (Upstash) do not answer INFO sections: then the field is empty and the caller says "unknown".

  Returns
    {memorySection, persistenceSection}   INFO text, or '' when not available
]]
local function section(name)
  local reply = redis.pcall('INFO', name)
  if type(reply) == 'string' then return reply end
  return ''
end
return {section('memory'), section('persistence')}
