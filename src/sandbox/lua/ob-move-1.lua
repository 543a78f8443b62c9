--[[
  Moves an Open Banking resource (consent or payment hash) from one status to the next, once.
  KEYS[1]  the resource hash (fields: status, updated, ...)
  ARGV[1]  the status it must be in; several allowed, separated by ','
  ARGV[2]  the status to set
  ARGV[3]  the update time (ISO 8601), stored as `updated`
  returns  1 when moved, 0 when the resource is missing or in another status
]]
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return 0 end
for allowed in string.gmatch(ARGV[1], '[^,]+') do
  if allowed == current then
    redis.call('HSET', KEYS[1], 'status', ARGV[2], 'updated', ARGV[3])
    return 1
  end
end
return 0
