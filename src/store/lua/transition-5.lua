--[[
  The one place a payment's status changes (the state machine in src/payments decides what is
  allowed; this script makes it atomic). In one step it checks the current status, writes the new
  fields, appends the status event to the payment's stream (SSE replay and webhook outbox), stores
  the webhook event body, schedules its deliveries and the next work item, and publishes the change.
  A crash therefore never loses or invents an event.

  KEYS[1] payment hash
  KEYS[2] due sorted set
  KEYS[3] payment event stream
  KEYS[4] event hash (webhook body)
  KEYS[5] lease sorted set
  ARGV[1]  allowed current statuses, comma-separated; '-' = the payment must not exist yet
  ARGV[2]  new status
  ARGV[3]  fields to set: JSON object of string values (includes status and updated_at)
  ARGV[4]  fields to delete, comma-separated ('' = none)
  ARGV[5]  event id ('' = no event)
  ARGV[6]  event JSON (Standard Webhooks body {type, timestamp, data})
  ARGV[7]  webhook delivery members to schedule now, comma-separated (e.g. 'hook:evt_1:g')
  ARGV[8]  now (ms)
  ARGV[9]  due member to schedule ('' = none), ARGV[10] its due time (ms)
  ARGV[11] due/lease members to drop, comma-separated ('' = none)
  ARGV[12] retention seconds: always for the event hash, for the payment and its stream when terminal
  ARGV[13] '1' when the new status is terminal
  ARGV[14] changes channel, ARGV[15] payment id (the published message)

  Returns 1 on success; -1 when the payment does not exist (or exists, when '-' was expected);
  -2 when its status is not one of the allowed ones.
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

local fields = cjson.decode(ARGV[3])
local flat = {}
for k, v in pairs(fields) do
  flat[#flat + 1] = k
  flat[#flat + 1] = v
end
redis.call('HSET', KEYS[1], unpack(flat))
local drop = split(ARGV[4])
if #drop > 0 then redis.call('HDEL', KEYS[1], unpack(drop)) end

for _, member in ipairs(split(ARGV[11])) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[5], member)
end

if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', 100, '*', 'event_id', ARGV[5], 'status', ARGV[2], 'event', ARGV[6])
  redis.call('HSET', KEYS[4], 'body', ARGV[6])
  for _, member in ipairs(split(ARGV[7])) do
    redis.call('ZADD', KEYS[2], ARGV[8], member)
  end
end

if ARGV[9] ~= '' then redis.call('ZADD', KEYS[2], ARGV[10], ARGV[9]) end

local ttl = tonumber(ARGV[12])
if ARGV[5] ~= '' then redis.call('EXPIRE', KEYS[4], ttl) end
if ARGV[13] == '1' then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end

redis.call('PUBLISH', ARGV[14], ARGV[15])
return 1
