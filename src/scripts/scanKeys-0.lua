--[[
  scanKeys: one SCAN step over the key names matching a pattern, for the on-demand orphan repair
  (`lull repair`). It reads no key's value, so it declares none; it is never on the hot path or
  in the sweep. On Redis Cluster it sees the node it runs on only (run it against each node).

  ARGV[1] cursor   SCAN cursor ("0" to start)
  ARGV[2] pattern  MATCH pattern
  ARGV[3] count    COUNT hint

  Returns
    {nextCursor, {key...}}   nextCursor "0" when the scan is complete
]]
local cursor = ARGV[1] -- SCAN cursor
local pattern = ARGV[2] -- MATCH pattern
local count = ARGV[3] -- COUNT hint

return redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', count)
