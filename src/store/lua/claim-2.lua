--[[
  Claims due work for one worker: moves up to ARGV[3] members whose due time has come from the due
  set to the lease set, leased until ARGV[2]. Leases that expired (their worker died) are put back
  first, due at once, so another worker takes them over.

  KEYS[1] due     sorted set, score = due time (ms)
  KEYS[2] leases  sorted set, score = lease expiry (ms)
  ARGV[1] now (ms)
  ARGV[2] lease expiry (ms)
  ARGV[3] most members to claim

  Returns { member1, dueScore1, member2, dueScore2, …, nextDueScore or '' }:
  the claimed members with the time they were due (for lateness), and when the next unclaimed item
  is due, so the worker knows how long it may sleep.
]]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[1], now, member)
end

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local result = {}
for i = 1, #due, 2 do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('ZADD', KEYS[2], ARGV[2], due[i])
  result[#result + 1] = due[i]
  result[#result + 1] = due[i + 1]
end

local nextDue = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
result[#result + 1] = nextDue[2] or ''
return result
