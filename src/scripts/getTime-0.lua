--[[
  getTime: the store's clock.

  Returns
    nowMs
]]

--- @include "now"

return nowMs()
