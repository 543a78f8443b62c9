--[[
  Enters payments into the list index of GET /payments and trims it to the retention.

  The index is ordered by (created_at, id). It is not one sorted set (over 128 entries Redis keeps
  a sorted set as a skiplist, ~120 bytes an entry) but leaves of at most ARGV[3] - 1 entries, each
  a small sorted set in the compact listpack encoding (~40 bytes an entry), plus a directory:
  one sorted set, every score 0, whose members `<created_at, 15 digits><id> <leaf number>` name
  each leaf by its lower bound, so lexicographic order (ZRANGEBYLEX) is (created_at, id) order.
  Leaf n holds the entries from its lower bound up to the next leaf's. A leaf that reaches
  ARGV[3] entries is split in halves, so both stay compact; an entry below the first leaf's bound
  lowers that bound. All keys carry one hash tag: on Redis Cluster one slot, as the one set was.

  KEYS[1] directory sorted set
  KEYS[2] leaf number counter
  ARGV[1] leaf key prefix (the leaf's number follows)
  ARGV[2] retention cut-off (ms): entries created before it are removed
  ARGV[3] entries at which a leaf is split (Redis' zset-max-listpack-entries, 128 by default)
  ARGV[4], ARGV[5], … created_at (ms), payment id; pairs

  Returns the number of leaves.
]]
local dir, seq, base = KEYS[1], KEYS[2], ARGV[1]
local cutoff, splitAt = tonumber(ARGV[2]), tonumber(ARGV[3])

local function bound(created, id) return string.format('%015d', math.max(0, created)) .. id end
local function leafKey(member) return base .. string.match(member, ' (%d+)$') end

local function split(leaf)
  local n = redis.call('ZCARD', leaf)
  if n < splitAt then return end
  local upper = redis.call('ZRANGE', leaf, math.floor(n / 2), -1, 'WITHSCORES')
  local number = redis.call('INCR', seq)
  local entries = {}
  for i = 1, #upper, 2 do
    entries[#entries + 1] = upper[i + 1]
    entries[#entries + 1] = upper[i]
  end
  redis.call('ZADD', base .. number, unpack(entries))
  redis.call('ZREMRANGEBYRANK', leaf, math.floor(n / 2), -1)
  redis.call('ZADD', dir, 0, bound(tonumber(upper[2]), upper[1]) .. ' ' .. number)
end

for i = 4, #ARGV, 2 do
  local created, id = tonumber(ARGV[i]), ARGV[i + 1]
  local key = bound(created, id)
  -- '!' sorts after the ' ' that ends a bound and before every id character.
  local member = redis.call('ZREVRANGEBYLEX', dir, '[' .. key .. '!', '-', 'LIMIT', 0, 1)[1]
  if not member then
    local first = redis.call('ZRANGE', dir, 0, 0)[1]
    if first then
      redis.call('ZREM', dir, first)
      member = key .. ' ' .. string.match(first, ' (%d+)$')
    else
      member = key .. ' ' .. redis.call('INCR', seq)
    end
    redis.call('ZADD', dir, 0, member)
  end
  redis.call('ZADD', leafKey(member), created, id)
  split(leafKey(member))
end

-- Retention: a leaf whose successor starts before the cut-off holds only older entries.
while true do
  local two = redis.call('ZRANGE', dir, 0, 1)
  if #two < 2 or tonumber(string.sub(two[2], 1, 15)) >= cutoff then break end
  redis.call('DEL', leafKey(two[1]))
  redis.call('ZREM', dir, two[1])
end
local first = redis.call('ZRANGE', dir, 0, 0)[1]
if first then redis.call('ZREMRANGEBYSCORE', leafKey(first), '-inf', '(' .. cutoff) end
return redis.call('ZCARD', dir)
