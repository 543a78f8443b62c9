--[[
  Registers one running process's token keys (by fingerprint) in the deployment's key-holder table,
  only if it can share sealed tokens with every other live process: its sealing (first) key must be
  one every live process can open, and every live process's sealing key one it can open. Checked and
  written in one step, so two processes with incompatible keys cannot both get in by starting at once.
  Entries of processes that stopped renewing (a crash) are dropped once past their expiry.

  KEYS[1] holders  hash: process id -> "<expires at ms>|<sealing key fp>|<fp>,<fp>,…" (the keys it opens)
  ARGV[1] now (ms)
  ARGV[2] this entry's expiry (ms); also the table's own TTL from now
  ARGV[3] this process's id
  ARGV[4] fingerprint of its sealing key
  ARGV[5] fingerprints of every key it opens, comma-separated

  Returns 0 when registered (or renewed), else the number of live processes it conflicts with
  (nothing written).
]]
local now = tonumber(ARGV[1])
local mine = ',' .. ARGV[5] .. ','
local conflicts = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local id = entries[i]
  if id ~= ARGV[3] then
    local expires, sealing, opens = string.match(entries[i + 1], '^(%d+)|(%x+)|([%x,]+)$')
    if not expires or tonumber(expires) <= now then
      redis.call('HDEL', KEYS[1], id)
    elseif not string.find(mine, ',' .. sealing .. ',', 1, true)
      or not string.find(',' .. opens .. ',', ',' .. ARGV[4] .. ',', 1, true) then
      conflicts = conflicts + 1
    end
  end
end
if conflicts > 0 then return conflicts end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[2] .. '|' .. ARGV[4] .. '|' .. ARGV[5])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) - now)
return 0
