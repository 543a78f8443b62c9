--[[
  Notes, before the bank is asked, the payment a claimed request is about to create: its id and its
  client secret (sealed), so whoever settles the claim later (this request after a fault, or the
  request that takes it over) can tell whether that payment exists and answer it. A noted claim is
  kept as long as a stored answer: the hold then only says when another request may take it over
  (idempotency-claim-1.lua), never frees the key by itself. Only while the claim is still in flight
  and the caller's (compare-and-set): a request that lost its claim must not ask the bank.

  KEYS[1] idempotency hash
  ARGV[1] owner id, ARGV[2] payment id, ARGV[3] sealed client secret, ARGV[4] seconds to keep the claim

  Returns 1 when noted, 0 when the claim is not (any longer) the caller's.
]]
local claim = redis.call('HMGET', KEYS[1], 'state', 'owner')
if claim[1] ~= 'in_flight' or claim[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'payment', ARGV[2], 'secret', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
