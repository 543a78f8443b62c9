--[[
  Claims due work for one worker: moves up to ARGV[3] members whose due time has come from the due
  set to the lease set, leased until ARGV[2]. Leases that expired (their worker died) are put back
  first, due at once, so another worker takes them over.

  Members of one kind (ARGV[4], e.g. 'poll:') come with fields of their payment hash, read in the
  same call (issue 12.4: no HMGET per token poll). The hash key is ARGV[5] .. the member's payment id
  (its shard's key prefix: a shard's due set only holds work of payments born in that shard, so the
  key is in this script's hash slot). The hashes are read before anything is leased: a read refused
  during a slot migration fails the claim with nothing claimed.

  KEYS[1] due     sorted set, score = due time (ms)
  KEYS[2] leases  sorted set, score = lease expiry (ms)
  ARGV[1] now (ms)
  ARGV[2] lease expiry (ms)
  ARGV[3] most members to claim
  ARGV[4] kind prefix whose payment fields are read, or '' for none
  ARGV[5] key prefix of the payment hashes of this shard
  ARGV[6], … the hash fields to read

  Returns { member1, dueScore1, fields1, member2, dueScore2, fields2, …, nextDueScore or '' }:
  the claimed members with the time they were due (for lateness) and, for members of kind ARGV[4],
  the values of ARGV[6…] (nil where absent), else 0; then when the next unclaimed item is due, so
  the worker knows how long it may sleep.
]]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local kind = ARGV[4] or ''

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[1], now, member)
end

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local result = {}
for i = 1, #due, 2 do
  local fields = 0
  if kind ~= '' and string.sub(due[i], 1, #kind) == kind then
    fields = redis.call('HMGET', ARGV[5] .. string.sub(due[i], #kind + 1), unpack(ARGV, 6))
  end
  result[#result + 1] = due[i]
  result[#result + 1] = due[i + 1]
  result[#result + 1] = fields
end
for i = 1, #due, 2 do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('ZADD', KEYS[2], ARGV[2], due[i])
end

local nextDue = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
result[#result + 1] = nextDue[2] or ''
return result
