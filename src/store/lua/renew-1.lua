--[[
  Renews the leases of the work one worker has in hand (issue 11.5): one call per renewal tick for
  all of them, so a short lease costs one round trip per tick, not one per item. Fenced like
  settle-3.lua: a lease is extended only while its score is still the one this worker holds; one that
  expired and was claimed again by another worker (or settled) is left alone and reported as lost.

  KEYS[1] leases  sorted set, score = lease expiry (ms)
  ARGV[1] the new lease expiry (ms)
  ARGV[2], ARGV[3], … pairs of member and the lease expiry this worker holds it with

  Returns one integer per pair, in order: 1 when renewed, 0 when the lease is no longer this worker's.
]]
local result = {}
for i = 2, #ARGV, 2 do
  local held = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if held and tonumber(held) == tonumber(ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
    result[#result + 1] = 1
  else
    result[#result + 1] = 0
  end
end
return result
