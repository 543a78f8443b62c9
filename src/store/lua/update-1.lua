--[[
  Writes fields of a payment hash only while the payment exists, and, when statuses are given, only
  while it is in one of them. A plain HSET after the hash expired (retention) or was deleted would
  create a new hash of a few fields and no TTL: an orphan that nothing reads and nothing ever
  removes. Notes written outside a transition (poll attempts, a held token, the bank call time,
  reconciliation notes) go through here. A note that only makes sense before the payment ends (a
  held token: tokens are kept only until used) names the statuses it may be written in, so a late
  write, or the same write run again after the payment ended (a client re-sending it), is refused.

  KEYS[1] payment hash
  ARGV[1] allowed current statuses, comma-separated, each as its letter and its name (as in
          transition-6.lua); '' = any
  ARGV[2] n, the number of field/value pairs to set
  ARGV[3 .. 2n+2] field, value, …
  ARGV[2n+3 ..] fields to delete

  Returns 1 when written; 0 when there is no payment; -2 when its status is not one of the allowed
  ones (nothing written either way).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' then
  local current = redis.call('HGET', KEYS[1], 'status')
  if not current or not string.find(',' .. ARGV[1] .. ',', ',' .. current .. ',', 1, true) then return -2 end
end
local n = tonumber(ARGV[2])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 * n + 2)) end
if #ARGV > 2 * n + 2 then redis.call('HDEL', KEYS[1], unpack(ARGV, 2 * n + 3)) end
return 1
