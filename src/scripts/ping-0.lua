--[[
  ping: liveness probe (a script, because adapters only speak EVAL/EVALSHA).

  Returns
    'PONG'
]]
local reply = redis.call('PING')
return reply['ok'] or reply
