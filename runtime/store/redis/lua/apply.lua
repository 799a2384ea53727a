--[[
  APPLY: the writes of an `Effects` with no claim (see apply-effects).

  KEYS[1..]  the effect keys
  ARGV[1..]  the effect ops
  Returns 1, or 0 when the guard found its key (nothing applied).
]]
--- @include "apply-effects"

return apply_effects(1, 1, #ARGV)
