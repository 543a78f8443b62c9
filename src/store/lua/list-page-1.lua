--[[
  One page of the payment list index (GET /payments), read atomically so that payments created
  while a shop pages through the list neither repeat nor hide older ones.

  The index is one sorted set: score = created_at (ms), member = payment id, so its order is
  (created_at, id), Redis' own order for equal scores. A cursor is a payment id; its rank in that
  order says where the next page starts (ZREVRANK/ZRANK, O(log n)) however many payments share its
  millisecond and however many were added in front of it since the last page.

  KEYS[1] list index sorted set
  ARGV[1] 'older' (newest first, the entries after the cursor) or 'newer' (oldest first, before it)
  ARGV[2] cursor payment id ('' = start at the newest, or oldest, end)
  ARGV[3] lowest created_at (ms, inclusive), or '-inf'
  ARGV[4] created_at bound (ms, exclusive), or '+inf'
  ARGV[5] how many ids at most

  Returns the ids in the direction's order (fewer than ARGV[5] when the range ends), or -1 when
  the cursor is not in the index (unknown, or past the retention).
]]
local key, older, cursor = KEYS[1], ARGV[1] == 'older', ARGV[2]
local low, high, count = ARGV[3], ARGV[4], tonumber(ARGV[5])

local start = 0
if cursor ~= '' then
  local rank
  if older then rank = redis.call('ZREVRANK', key, cursor) else rank = redis.call('ZRANK', key, cursor) end
  if not rank then return -1 end
  start = rank + 1
end

-- Skip the entries outside the range on the side this direction starts from (ZCOUNT is O(log n)).
if older and high ~= '+inf' then
  start = math.max(start, redis.call('ZCOUNT', key, high, '+inf'))
elseif not older and low ~= '-inf' then
  start = math.max(start, redis.call('ZCOUNT', key, '-inf', '(' .. low))
end

local page
if older then
  page = redis.call('ZREVRANGE', key, start, start + count - 1, 'WITHSCORES')
else
  page = redis.call('ZRANGE', key, start, start + count - 1, 'WITHSCORES')
end

-- Stop at the far side of the range.
local ids = {}
for i = 1, #page, 2 do
  local score = tonumber(page[i + 1])
  if older and low ~= '-inf' and score < tonumber(low) then break end
  if not older and high ~= '+inf' and score >= tonumber(high) then break end
  ids[#ids + 1] = page[i]
end
return ids
