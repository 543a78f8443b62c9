--[[
  Moves work earlier (CIBA ping: poll now). Waiting work is moved, never later (LT). Work that is
  leased (its poll is in flight right now) is marked instead, and settle-3.lua makes it due at once
  when the worker hands it back: otherwise a ping arriving during a poll that answered "pending"
  would be lost and the payment would wait for the next safety-net poll. One script, so the item
  cannot be settled between the two checks. Waiting work is in its due bucket (store/keys.ts), whose
  directory entry is lowered to match, or still in the due set of versions before the buckets.
  Moved waiting work wakes the workers of its shard in the same step (a ping's claim then never
  waits for a wake-up that a crash between two calls would have lost); marked leased work does not
  need one: its holder settles it due at once and looks again.

  KEYS[1] due bucket     sorted set, score = due time (ms)
  KEYS[2] due directory  sorted set, member = bucket number, score = its earliest due time (ms)
  KEYS[3] leases         sorted set, score = lease expiry (ms)
  KEYS[4] pinged         set of leased members nudged while in flight
  KEYS[5] legacy due     sorted set, score = due time (ms)
  ARGV[1] the time (ms) it should be due
  ARGV[2] member
  ARGV[3] its bucket number
  ARGV[4] the shard's wake-up channel (in this script's slot: SPUBLISH)

  Returns 1 when waiting work was moved earlier or leased work was marked; 0 otherwise.
]]
local function woken(moved)
  if moved == 1 then redis.call('SPUBLISH', ARGV[4], '1') end
  return moved
end
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[2], 'LT', ARGV[1], ARGV[3])
  return woken(redis.call('ZADD', KEYS[1], 'XX', 'LT', 'CH', ARGV[1], ARGV[2]))
end
if redis.call('ZSCORE', KEYS[5], ARGV[2]) then
  return woken(redis.call('ZADD', KEYS[5], 'XX', 'LT', 'CH', ARGV[1], ARGV[2]))
end
if redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  redis.call('SADD', KEYS[4], ARGV[2])
  return 1
end
return 0
