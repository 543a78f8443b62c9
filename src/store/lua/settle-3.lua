--[[
  Finishes a worker's hold on leased work, but only while the lease is still the one it claimed
  (the lease score is the fencing token). A worker that ran past its lease finds another worker
  holding the item, or the item back in the due set, and must not drop or duplicate it.
  Work that was nudged while leased (a CIBA ping during an in-flight poll, see advance-3.lua) is
  due again at once rather than at the time the handler asked for.

  KEYS[1] due     sorted set, score = due time (ms)
  KEYS[2] leases  sorted set, score = lease expiry (ms)
  KEYS[3] pinged  set of leased members nudged while in flight
  ARGV[1] member
  ARGV[2] the lease expiry this worker claimed it with
  ARGV[3] '' = done (drop the lease); else the time (ms) it is due again
  ARGV[4] now (ms)

  Returns 1 when the lease was this worker's and is settled; 0 when it no longer was (nothing changed).
]]
local held = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not held or tonumber(held) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
local nudged = redis.call('SREM', KEYS[3], ARGV[1])
if ARGV[3] ~= '' then
  local at = ARGV[3]
  if nudged == 1 and tonumber(ARGV[4]) < tonumber(at) then at = ARGV[4] end
  redis.call('ZADD', KEYS[1], at, ARGV[1])
end
return 1
