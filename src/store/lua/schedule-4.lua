--[[
  Puts work on the schedule at a given time, earlier or later than it was (webhook resend, a
  reschedule without a lease): into its due bucket (store/keys.ts), the bucket's directory entry set
  again from its first member (a move later may raise it). A copy in the due set of versions before
  the buckets goes, so the item is never due twice; with ARGV[4] = '1' its lease goes too.
  With ARGV[4] = '0' leased work (in flight) is left alone: due beside its lease, a second worker
  would claim it and run it beside the first (a webhook sent twice). So the same call run again
  after a worker claimed the work it scheduled (a client re-sending it) changes nothing either.

  KEYS[1] due bucket     sorted set, score = due time (ms)
  KEYS[2] due directory  sorted set, member = bucket number, score = its earliest due time (ms)
  KEYS[3] leases         sorted set, score = lease expiry (ms)
  KEYS[4] legacy due     sorted set, score = due time (ms)
  ARGV[1] the time (ms) it is due
  ARGV[2] member
  ARGV[3] its bucket number
  ARGV[4] '1' to drop its lease

  Returns 1 when scheduled; 0 when it is leased and ARGV[4] is '0' (nothing changed).
]]
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[3], ARGV[2])
elseif redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  return 0
end
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2], ARGV[3])
return 1
