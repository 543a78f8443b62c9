--[[
  Marks one stored oidc-provider model instance as consumed, keeping its remaining TTL.
  Atomic, so two concurrent token requests with the same auth_req_id cannot both succeed
  (oidc-provider then revokes the grant of a replayed one, CIBA Core §10.1 / RFC 6749 §4.1.2).

  KEYS[1] model key (JSON payload)
  ARGV[1] consumed timestamp (epoch seconds)
  Returns 1 when marked, 0 when the key does not exist.
]]
local raw = redis.call('GET', KEYS[1])
if not raw then
  return 0
end
local payload = cjson.decode(raw)
payload['consumed'] = tonumber(ARGV[1])
redis.call('SET', KEYS[1], cjson.encode(payload), 'KEEPTTL')
return 1
