--[[
  Rate check for one pending CIBA token request (CIBA Core §11: slow_down, "a variant of
  authorization_pending", with the interval raised by 5 seconds as in RFC 8628 §3.5).

  KEYS[1] poll state hash of the auth_req_id: fields `next` (epoch ms before which a poll is too
          early) and `interval` (ms currently required between polls)
  ARGV[1] now (epoch ms)
  ARGV[2] TTL of the hash (ms)
  Returns 1 when the poll is on time, 0 when the client polled too fast (answer slow_down).
  A missing hash (state lost) counts as on time and starts a new one.
]]
local now = tonumber(ARGV[1])
local nextAt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
local interval = tonumber(redis.call('HGET', KEYS[1], 'interval') or '0')
local onTime = 1
if now < nextAt then
  interval = interval + 5000
  onTime = 0
end
redis.call('HSET', KEYS[1], 'next', now + interval, 'interval', interval)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return onTime
