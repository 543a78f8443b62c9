--[[
  Frees a claimed request's key for a retry, only while the claim is still in flight and the caller's
  (compare-and-delete). Sent again after a lost reply, it finds the key free or a newer request's
  claim, and leaves it: freeing another request's claim would let a third run beside it.

  In mode 'unnoted' (a claim whose caller heard a fault, so never heard whether it got the key) a
  claim holding a payment note is never deleted: the caller's claim took over a noted one (its owner
  outlived the hold), and deleting it would lose the note, so a retry would start a second payment
  beside the noted one. It is made takeable at once instead (held_until 0): the next request of the
  same body takes it over and settles the noted payment. Without a mode (a request that voided its
  noted payment or created none) the claim is deleted as before.

  KEYS[1] idempotency hash
  ARGV[1] owner id
  ARGV[2] mode: 'unnoted', or absent

  Returns 1 when freed (or, a noted claim in mode 'unnoted', handed on), 0 when the claim is not (any
  longer) the caller's.
]]
local claim = redis.call('HMGET', KEYS[1], 'state', 'owner', 'payment')
if claim[1] ~= 'in_flight' or claim[2] ~= ARGV[1] then return 0 end
if ARGV[2] == 'unnoted' and claim[3] then
  redis.call('HSET', KEYS[1], 'held_until', 0)
  return 1
end
redis.call('DEL', KEYS[1])
return 1
