--[[
  One page of the payment list index (GET /payments), read atomically so that payments created
  while a shop pages through the list neither repeat nor hide older ones.

  The index is ordered by (created_at, id), Redis' own order for equal scores, kept in leaves of
  at most 127 entries named by a directory (see list-add-2.lua). A cursor is a payment id with its
  created_at (read from the payment): that pair finds its leaf, its rank there says where the next
  page starts (ZREVRANK/ZRANK) however many payments share its millisecond and however many were
  added in front of it since the last page; the page goes on through the next leaves.

  KEYS[1] directory sorted set
  ARGV[1] leaf key prefix
  ARGV[2] 'older' (newest first, the entries after the cursor) or 'newer' (oldest first, before it)
  ARGV[3] cursor payment id ('' = start at the newest, or oldest, end)
  ARGV[4] the cursor's created_at (ms; '' when its payment is not stored: then it is not listed)
  ARGV[5] lowest created_at (ms, inclusive), or '-inf'
  ARGV[6] created_at bound (ms, exclusive), or '+inf'
  ARGV[7] how many ids at most

  Returns the ids in the direction's order (fewer than ARGV[7] when the range ends), or -1 when
  the cursor is not in the index (unknown, or past the retention).
]]
local dir, base, older = KEYS[1], ARGV[1], ARGV[2] == 'older'
local cursor, cursorCreated = ARGV[3], ARGV[4]
local low, high, count = ARGV[5], ARGV[6], tonumber(ARGV[7])

local function digits(ms) return string.format('%015d', math.max(0, tonumber(ms))) end
local function leafKey(member) return base .. string.match(member, ' (%d+)$') end
-- The last leaf whose lower bound is below `bound` (a lexicographic range limit), if any.
local function leafBelow(bound) return redis.call('ZREVRANGEBYLEX', dir, bound, '-', 'LIMIT', 0, 1)[1] end

local member, start = nil, 0
if cursor ~= '' then
  if cursorCreated == '' then return -1 end
  member = leafBelow('[' .. digits(cursorCreated) .. cursor .. '!')
  if not member then return -1 end
  local rank
  if older then
    rank = redis.call('ZREVRANK', leafKey(member), cursor)
  else
    rank = redis.call('ZRANK', leafKey(member), cursor)
  end
  if not rank then return -1 end
  start = rank + 1
elseif older then
  if high ~= '+inf' then member = leafBelow('(' .. digits(high)) else member = redis.call('ZRANGE', dir, -1, -1)[1] end
else
  if low ~= '-inf' then member = leafBelow('(' .. digits(low)) end
  member = member or redis.call('ZRANGE', dir, 0, 0)[1]
end
if not member then return {} end
local position = redis.call('ZRANK', dir, member)

local ids = {}
while member and #ids < count do
  local leaf = leafKey(member)
  -- Skip the entries outside the range on the side this direction starts from (ZCOUNT is O(log n)).
  if older and high ~= '+inf' then
    start = math.max(start, redis.call('ZCOUNT', leaf, high, '+inf'))
  elseif not older and low ~= '-inf' then
    start = math.max(start, redis.call('ZCOUNT', leaf, '-inf', '(' .. low))
  end
  local page
  if older then
    page = redis.call('ZREVRANGE', leaf, start, start + count - #ids - 1, 'WITHSCORES')
  else
    page = redis.call('ZRANGE', leaf, start, start + count - #ids - 1, 'WITHSCORES')
  end
  -- Stop at the far side of the range.
  for i = 1, #page, 2 do
    local score = tonumber(page[i + 1])
    if older and low ~= '-inf' and score < tonumber(low) then return ids end
    if not older and high ~= '+inf' and score >= tonumber(high) then return ids end
    ids[#ids + 1] = page[i]
  end
  if older then position = position - 1 else position = position + 1 end
  member = position >= 0 and redis.call('ZRANGE', dir, position, position)[1] or nil
  start = 0
end
return ids
