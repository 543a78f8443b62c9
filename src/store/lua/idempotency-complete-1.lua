--[[
  Stores a claimed request's final answer for replay, only while the claim is still in flight and the
  caller's (compare-and-set). Sent again after a lost reply (a failover, a timeout), it finds the
  answer already stored, or a newer request's claim, and changes nothing: a request never overwrites
  another's answer. The owner and the noted payment go: a stored answer has neither.

  KEYS[1] idempotency hash
  ARGV[1] owner id, ARGV[2] status, ARGV[3] sealed body, ARGV[4] location ('' = none),
  ARGV[5] seconds the answer is kept

  Returns 1 when stored, 0 when the claim is not (any longer) the caller's.
]]
local claim = redis.call('HMGET', KEYS[1], 'state', 'owner')
if claim[1] ~= 'in_flight' or claim[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3], 'location', ARGV[4])
redis.call('HDEL', KEYS[1], 'owner', 'held_until', 'payment', 'secret')
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
