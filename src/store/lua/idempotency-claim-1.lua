--[[
  Claims an Idempotency-Key for one request, atomically (DESIGN.md POST /checkout).

  KEYS[1] idempotency hash of this caller scope and key
  ARGV[1] fingerprint of the request body
  ARGV[2] seconds a claim in flight is held before it can be taken again (a crashed request)
  ARGV[3] seconds a stored response is kept

  Returns { 'new' } when this request may run; { 'in_flight' } while another holds it;
  { 'mismatch' } when the key was used with another body; { 'replay', status, body, location }.
]]
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'in_flight', 'fingerprint', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return { 'new' }
end
if redis.call('HGET', KEYS[1], 'fingerprint') ~= ARGV[1] then return { 'mismatch' } end
if state == 'in_flight' then return { 'in_flight' } end
local stored = redis.call('HMGET', KEYS[1], 'status', 'body', 'location')
return { 'replay', stored[1], stored[2], stored[3] or '' }
