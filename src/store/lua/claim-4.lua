--[[
  Claims due work for one worker: moves up to ARGV[3] members whose due time has come from the due
  buckets (and the legacy due set) to the lease set, leased until ARGV[2]. Leases that expired
  (their worker died) are put back first, so another worker takes them over.

  Due work is spread over buckets (small sorted sets that stay compact listpacks, see
  store/keys.ts); the directory KEYS[1] holds each non-empty bucket's earliest due time, so the
  buckets with due work are found without looking at the others. Buckets are taken oldest first;
  after a change a bucket's directory entry is set again from its first member. The due set of
  versions before the buckets (KEYS[3]) is drained first while it exists (an upgrade strands nothing).

  An expired lease of paced work (kind ARGV[7], e.g. 'poll:') is due no earlier than its last lease
  start (expiry − ARGV[8]) plus its payment's interval (hash field ARGV[9], default ARGV[10]): a
  worker that died mid-poll must not make the next poll come early (CIBA Core §7.3, slow_down).
  Other expired work is due at once.

  Work put back from an expired lease is noted in KEYS[4], and the claim that takes it next says so
  (takeover 1) and drops the note: its earlier worker may still be running the step (a stall, a store
  it cannot reach) and may have spent what only one attempt can spend (a CIBA auth_req_id). Notes of
  work that never came back (its payment ended meanwhile) are dropped after ARGV[12] ms.

  Members of kind ARGV[4] (e.g. 'poll:') come with fields of their payment hash, read in the same
  call (issue 12.4: no HMGET per token poll). The hash key is ARGV[5] .. the member's payment id
  (its shard's key prefix: a shard's due work only holds work of payments born in that shard, so the
  key is in this script's hash slot, as are the buckets ARGV[6] .. n). The hashes are read before
  anything is leased: a read refused during a slot migration fails the claim with nothing claimed.

  KEYS[1] due directory  sorted set, member = bucket number, score = its earliest due time (ms)
  KEYS[2] leases         sorted set, score = lease expiry (ms)
  KEYS[3] legacy due     sorted set, score = due time (ms)
  KEYS[4] taken over     sorted set, member = work put back after its lease expired, score = when (ms)
  ARGV[1] now (ms)            ARGV[2] lease expiry (ms)       ARGV[3] most members to claim
  ARGV[4] kind prefix whose payment fields are read, or '' for none
  ARGV[5] key prefix of the payment hashes of this shard
  ARGV[6] key prefix of the due buckets of this shard, ARGV[11] the number of buckets
  ARGV[7] kind prefix of paced work, or '' for none; ARGV[8] lease length (ms)
  ARGV[9] hash field of the pace (ms), ARGV[10] its default
  ARGV[12] how long a takeover note is kept (ms)
  ARGV[13], … the hash fields to read

  Returns { member1, dueScore1, fields1, takeover1, member2, …, nextDueScore or '' }: the claimed
  members with the time they were due (for lateness), for members of kind ARGV[4] the values of
  ARGV[13…] (nil where absent), else 0, and 1 when the member comes from an expired lease, else 0;
  then when the next unclaimed item is due, so the worker knows how long it may sleep.
]]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local kind = ARGV[4]
local dir, prefix, buckets = KEYS[1], ARGV[6], tonumber(ARGV[11])

-- store/keys.ts dueBucketOf: fnv1a32 (src/crypto/hashing.ts) of the payment id in `kind:<id>[:…]`,
-- mod buckets. Keep the two in step.
local function bucketOf(member)
  local colon = string.find(member, ':', 1, true)
  local start = colon and colon + 1 or 1
  local stop = string.find(member, ':', start, true)
  local id = string.sub(member, start, stop and stop - 1 or -1)
  local h = 2166136261
  for i = 1, #id do
    h = bit.bxor(h, string.byte(id, i)) % 4294967296
    h = ((h % 65536) * 16777619 + (math.floor(h / 65536) * 16777619 % 65536) * 65536) % 4294967296
  end
  return h % buckets
end

local function fixDir(b)
  local first = redis.call('ZRANGE', prefix .. b, 0, 0, 'WITHSCORES')
  if first[2] then redis.call('ZADD', dir, first[2], b) else redis.call('ZREM', dir, b) end
end

local function startsWith(s, p) return p ~= '' and string.sub(s, 1, #p) == p end

-- Expired leases: read their paces first, then put them back.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local backAt = {}
for i = 1, #expired, 2 do
  local at = now
  if startsWith(expired[i], ARGV[7]) then
    local pace = redis.call('HGET', ARGV[5] .. string.sub(expired[i], #ARGV[7] + 1), ARGV[9]) or ARGV[10]
    at = math.max(now, tonumber(expired[i + 1]) - tonumber(ARGV[8]) + tonumber(pace))
  end
  backAt[#backAt + 1] = at
end
for i = 1, #expired, 2 do
  local b = bucketOf(expired[i])
  redis.call('ZREM', KEYS[2], expired[i])
  redis.call('ZADD', KEYS[4], now, expired[i])
  redis.call('ZADD', prefix .. b, backAt[(i + 1) / 2], expired[i])
  redis.call('ZADD', dir, 'LT', backAt[(i + 1) / 2], b)
end

-- Due work: the legacy set first, then the buckets with the oldest due work.
local due = {}  -- triples member, score, bucket (false: legacy)
local touched = {}  -- buckets looked at: their directory entries are set again (a stale one heals)
local function take(key, b, n)
  local found = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, n)
  for i = 1, #found, 2 do
    due[#due + 1] = found[i]; due[#due + 1] = found[i + 1]; due[#due + 1] = b
  end
  return #found / 2
end
local left = limit - take(KEYS[3], false, limit)
if left > 0 then
  for _, b in ipairs(redis.call('ZRANGEBYSCORE', dir, '-inf', now, 'LIMIT', 0, left)) do
    touched[b] = true
    left = left - take(prefix .. b, b, left)
    if left <= 0 then break end
  end
end

-- Takeover notes: nearly always none (one EXISTS per claim, no lookup per member).
local notes = redis.call('EXISTS', KEYS[4]) == 1
if notes then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[12])) end

local result = {}
for i = 1, #due, 3 do
  local fields = 0
  if startsWith(due[i], kind) and #ARGV >= 13 then
    fields = redis.call('HMGET', ARGV[5] .. string.sub(due[i], #kind + 1), unpack(ARGV, 13))
  end
  result[#result + 1] = due[i]
  result[#result + 1] = due[i + 1]
  result[#result + 1] = fields
  result[#result + 1] = notes and redis.call('ZREM', KEYS[4], due[i]) or 0
end
for i = 1, #due, 3 do
  redis.call('ZREM', due[i + 2] and prefix .. due[i + 2] or KEYS[3], due[i])
  redis.call('ZADD', KEYS[2], ARGV[2], due[i])
end
for b in pairs(touched) do fixDir(b) end

local nextDue = redis.call('ZRANGE', dir, 0, 0, 'WITHSCORES')[2]
local legacyNext = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')[2]
if legacyNext and (not nextDue or tonumber(legacyNext) < tonumber(nextDue)) then nextDue = legacyNext end
result[#result + 1] = nextDue or ''
return result
