--[[
  Frees a claimed request's key for a retry, only while the claim is still in flight and the caller's
  (compare-and-delete). Sent again after a lost reply, it finds the key free or a newer request's
  claim, and leaves it: freeing another request's claim would let a third run beside it.

  KEYS[1] idempotency hash
  ARGV[1] owner id

  Returns 1 when freed, 0 when the claim is not (any longer) the caller's.
]]
local claim = redis.call('HMGET', KEYS[1], 'state', 'owner')
if claim[1] ~= 'in_flight' or claim[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
