--[[
  Writes fields of a payment hash only while the payment exists. A plain HSET after the hash expired
  (retention) or was deleted would create a new hash of a few fields and no TTL: an orphan that
  nothing reads and nothing ever removes. Notes written outside a transition (poll attempts, a held
  token, the bank call time, reconciliation notes) go through here.

  KEYS[1] payment hash
  ARGV[1] n, the number of field/value pairs to set
  ARGV[2 .. 2n+1] field, value, …
  ARGV[2n+2 ..] fields to delete

  Returns 1 when written, 0 when there is no payment (nothing written).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[1])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 2, 2 * n + 1)) end
if #ARGV > 2 * n + 1 then redis.call('HDEL', KEYS[1], unpack(ARGV, 2 * n + 2)) end
return 1
