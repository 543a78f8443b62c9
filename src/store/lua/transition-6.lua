--[[
  The one place a payment's status changes (the state machine in src/payments decides what is
  allowed; this script makes it atomic). In one step it checks the current status, writes the new
  fields, appends the status event to the payment's event log (SSE replay and webhook outbox),
  schedules its webhook deliveries and the next work item, and publishes the change. A crash
  therefore never loses or invents an event.

  The event log lives in the payment hash itself: field `e<n>` holds the n-th event (1-based) as a
  short entry (src/payments/event-log.ts). n is the event's SSE id and names its webhook work
  items. The webhook body is not stored: it is rebuilt from the payment and the entry. No extra key
  per payment, and the log expires with the payment.

  All work items of a payment share one due bucket (store/keys.ts): KEYS[2]; its directory entry is
  set again from its first member after the changes. Dropped items also leave the due set of versions
  before the buckets.

  KEYS[1] payment hash (with its event log)
  KEYS[2] the payment's due bucket (sorted set, score = due time in ms)
  KEYS[3] lease sorted set
  KEYS[4] pinged set (leased work nudged while in flight, see advance-5.lua)
  KEYS[5] due directory (member = bucket number, score = its earliest due time)
  KEYS[6] legacy due sorted set
  ARGV[1]  allowed current statuses, comma-separated, each as its letter and its name (a hash an
           earlier version wrote holds the name); '-' = the payment must not exist yet
  ARGV[2]  fields to set: JSON object of string values (includes status and updated_at)
  ARGV[3]  fields to delete, comma-separated ('' = none)
  ARGV[4]  event log entry ('' = no event)
  ARGV[5]  webhook delivery members to schedule now, comma-separated, '#' standing for the event's
           position (e.g. 'hook:pay_1:#:g')
  ARGV[6]  now (ms)
  ARGV[7]  due member to schedule ('' = none), ARGV[8] its due time (ms)
  ARGV[9]  due/lease members to drop, comma-separated ('' = none); their ping marks go too, since a
           worker still holding one finds its lease gone and settles nothing, so the mark would stay
  ARGV[10] retention seconds, for the payment (and so its event log) once terminal
  ARGV[11] '1' when the new status is terminal
  ARGV[12] changes channel (the payment's shard's, in this script's slot: SPUBLISH), ARGV[13] payment id (the message)
  ARGV[14] the bucket number of KEYS[2]
  ARGV[15] a fence: a field's names, comma-separated (current, then an earlier version's; the first
           present one is read), that must still hold ARGV[16] ('' = absent); '' = no fence. So
           reconciliation fails a payment only if no bank call was noted since it read the payment.

  Returns 1 on success; -1 when the payment does not exist (or exists, when '-' was expected);
  -2 when its status is not one of the allowed ones, or the fenced field changed.
]]
local function split(s)
  local out = {}
  for part in string.gmatch(s, '[^,]+') do out[#out + 1] = part end
  return out
end

local current = redis.call('HGET', KEYS[1], 'status')
if ARGV[1] == '-' then
  if current then return -1 end
else
  if not current then return -1 end
  local allowed = false
  for _, s in ipairs(split(ARGV[1])) do
    if s == current then allowed = true end
  end
  if not allowed then return -2 end
end
if ARGV[15] ~= '' then
  local held = ''
  for _, name in ipairs(split(ARGV[15])) do
    local value = redis.call('HGET', KEYS[1], name)
    if value then
      held = value
      break
    end
  end
  if held ~= ARGV[16] then return -2 end
end

local fields = cjson.decode(ARGV[2])
local flat = {}
for k, v in pairs(fields) do
  flat[#flat + 1] = k
  flat[#flat + 1] = v
end
redis.call('HSET', KEYS[1], unpack(flat))
local drop = split(ARGV[3])
if #drop > 0 then redis.call('HDEL', KEYS[1], unpack(drop)) end

local scheduled = false
for _, member in ipairs(split(ARGV[9])) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
  redis.call('SREM', KEYS[4], member)
  redis.call('ZREM', KEYS[6], member)
  scheduled = true
end

if ARGV[4] ~= '' then
  local n = 1
  while redis.call('HEXISTS', KEYS[1], 'e' .. n) == 1 do n = n + 1 end
  local position = tostring(n)
  redis.call('HSET', KEYS[1], 'e' .. position, ARGV[4])
  for _, member in ipairs(split(ARGV[5])) do
    redis.call('ZADD', KEYS[2], ARGV[6], (string.gsub(member, '#', position)))
    scheduled = true
  end
end

if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[8], ARGV[7])
  scheduled = true
end
if scheduled then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if first[2] then redis.call('ZADD', KEYS[5], first[2], ARGV[14]) else redis.call('ZREM', KEYS[5], ARGV[14]) end
end

if ARGV[11] == '1' then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[10]))
end

redis.call('SPUBLISH', ARGV[12], ARGV[13])
return 1
