--[[
  qkeys(base): the keys of the queue block that starts at KEYS[base], by part name. The parts and
  their order are QUEUE_PARTS (keys.ts): ready, delayed, claimed, payload, claims, fence, owner,
  front; a block is QUEUE_WIDTH keys.
]]
local function qkeys(base)
  local q = {}
  for i, part in ipairs(QUEUE_PARTS) do q[part] = KEYS[base + i - 1] end
  return q
end
