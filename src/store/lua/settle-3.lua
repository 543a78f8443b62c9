--[[
  Finishes a worker's hold on leased work, but only while the lease is still the one it claimed
  (the lease score is the fencing token). A worker that ran past its lease finds another worker
  holding the item, or the item back in the due set, and must not drop or duplicate it.
  Work that was nudged while leased (a CIBA ping during an in-flight poll, see advance-5.lua) is
  due again at once rather than at the time the handler asked for.
  Many items of one shard are settled in one call (issue 12.4: the worker gathers the items its
  handlers finished in one turn of the event loop); each is fenced on its own.

  Work due again goes into its due bucket (store/keys.ts), whose directory entry is lowered to match.

  KEYS[1] due directory  sorted set, member = bucket number, score = its earliest due time (ms)
  KEYS[2] leases         sorted set, score = lease expiry (ms)
  KEYS[3] pinged         set of leased members nudged while in flight
  ARGV[1] now (ms)
  ARGV[2] key prefix of the due buckets of this shard
  ARGV[3], ARGV[4], ARGV[5], ARGV[6], … quadruples of
          member,
          the lease expiry this worker claimed it with,
          '' = done (drop the lease); else the time (ms) it is due again,
          its due bucket

  Returns one integer per quadruple, in order: 1 when the lease was this worker's and is settled; 0 when
  it no longer was (nothing changed for that item).
]]
local now = tonumber(ARGV[1])
local result = {}
for i = 3, #ARGV, 4 do
  local member = ARGV[i]
  local held = redis.call('ZSCORE', KEYS[2], member)
  if not held or tonumber(held) ~= tonumber(ARGV[i + 1]) then
    result[#result + 1] = 0
  else
    redis.call('ZREM', KEYS[2], member)
    local nudged = redis.call('SREM', KEYS[3], member)
    if ARGV[i + 2] ~= '' then
      local at = ARGV[i + 2]
      if nudged == 1 and now < tonumber(at) then at = ARGV[1] end
      redis.call('ZADD', ARGV[2] .. ARGV[i + 3], at, member)
      redis.call('ZADD', KEYS[1], 'LT', at, ARGV[i + 3])
    end
    result[#result + 1] = 1
  end
end
return result
