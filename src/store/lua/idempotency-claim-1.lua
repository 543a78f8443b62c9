--[[
  Claims an Idempotency-Key for one request, atomically (DESIGN.md POST /checkout).

  A claim is a hash: state 'in_flight' or 'done', the request body's fingerprint, and while in flight
  its owner (a random id per request: only the owner may note, complete or release it, see
  idempotency-note-1.lua, idempotency-complete-1.lua and idempotency-release-1.lua) and held_until
  (ms). Once the bank may be asked, the owner notes the payment id (and its sealed client secret):
  from then on the claim is not left to expire with its hold, since a retry running afresh could
  start a second payment beside the first. A noted claim whose owner outlived its hold (it crashed,
  or lost the store and gave up settling it) is handed to the next request of the same body, which
  must settle it: the noted payment exists (its answer is the 202) or is voided and the request runs.

  Claims written by a version before owners (no owner, no held_until) stay in flight until their
  TTL (the hold) frees them, as they always did; that version ends its own claims itself.

  KEYS[1] idempotency hash of this caller scope and key
  ARGV[1] fingerprint of the request body
  ARGV[2] seconds a claim in flight is held before it can be taken again (a crashed request)
  ARGV[3] the claiming request's owner id
  ARGV[4] now (ms)

  Sent again by the same owner (a lost reply), it answers what its first run answered and changes
  nothing.

  Returns { 'new' } when this request may run; { 'in_flight' } while another holds it;
  { 'mismatch' } when the key was used with another body; { 'replay', status, body, location };
  { 'unsettled', payment id, sealed client secret } when this request took over a noted claim.
]]
local now = tonumber(ARGV[4])
local heldUntil = now + tonumber(ARGV[2]) * 1000
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'in_flight', 'fingerprint', ARGV[1], 'owner', ARGV[3], 'held_until', heldUntil)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return { 'new' }
end
if redis.call('HGET', KEYS[1], 'fingerprint') ~= ARGV[1] then return { 'mismatch' } end
if state == 'in_flight' then
  local noted = redis.call('HMGET', KEYS[1], 'payment', 'secret', 'held_until', 'owner')
  -- This very claim sent again (the cluster client resends a script whose connection closed before
  -- the reply): the first run's answer again, never 'in_flight' against its own request. A claim
  -- that already holds a note when it is its owner's was a takeover ('unsettled').
  -- A note is its payment id and its sealed client secret, always written together: one without the
  -- other cannot be answered (no secret for the 202), so such a claim is left in flight, never run.
  local complete = noted[1] and noted[2]
  if noted[4] == ARGV[3] then
    if complete then return { 'unsettled', noted[1], noted[2] } end
    if noted[1] then return { 'in_flight' } end
    return { 'new' }
  end
  if complete and tonumber(noted[3] or '0') <= now then
    redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'held_until', heldUntil)
    return { 'unsettled', noted[1], noted[2] }
  end
  return { 'in_flight' }
end
local stored = redis.call('HMGET', KEYS[1], 'status', 'body', 'location')
return { 'replay', stored[1], stored[2], stored[3] or '' }
