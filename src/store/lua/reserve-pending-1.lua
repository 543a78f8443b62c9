--[[
  Holds a place for one more checkout of a customer, unless they already have `max` requests
  waiting for approval (issue 11.6: at most one push to a phone at a time). Atomic, so two checkouts
  racing for the same customer cannot both pass.

  KEYS[1] sorted set of the customer's pending checkouts: member payment id (or `hold:<n>` while the
          bank is being asked), score = when it stops counting (ms: the payment's expiry, or the hold's end)
  ARGV[1] now (ms)
  ARGV[2] max pending (0 = no limit: the place is still recorded, for the denial cool-down)
  ARGV[3] member to add
  ARGV[4] its score (ms)
  ARGV[5] key lifetime (ms), longer than any member's score

  A member already held is this very call's place, held before (a client re-sending the call after a
  lost reply): held, not refused as full by its own place, nor counted twice.

  Returns { 1 } when the place is held; { 0, ms } when full, with ms until the earliest member stops counting.
]]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return { 1 } end
local max = tonumber(ARGV[2])
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return { 0, math.max(0, tonumber(first[2]) - tonumber(ARGV[1])) }
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return { 1 }
