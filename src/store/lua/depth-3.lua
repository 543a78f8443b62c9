--[[
  How much work waits and how much is leased in one shard (the queue depth gauge): one call per
  shard, not one ZCARD per due bucket. Every non-empty bucket is in the directory.

  KEYS[1] due directory  sorted set, member = bucket number
  KEYS[2] leases         sorted set
  KEYS[3] legacy due     sorted set
  ARGV[1] key prefix of the due buckets of this shard

  Returns { due, leased }.
]]
local due = redis.call('ZCARD', KEYS[3])
for _, b in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  due = due + redis.call('ZCARD', ARGV[1] .. b)
end
return { due, redis.call('ZCARD', KEYS[2]) }
