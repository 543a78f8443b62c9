--[[
  Registers one running process in the deployment's live-process registry, only if it can share
  the deployment with every other live process:
  - its token keys (by fingerprint): its sealing (first) key must be one every live process can
    open, and every live process's sealing key one it can open;
  - its data layout version (how payments, the list index and the schedule are laid out in Redis):
    the same as every live process's. Processes of different layouts misread each other's data, so
    an upgrade that changes the layout is a stop-the-world (README "Upgrading").
  Checked and written in one step, so two incompatible processes cannot both get in by starting at
  once. Entries of processes that stopped renewing (a crash) are dropped once past their expiry.

  The previous release (register-key-holder-1.lua) reads only KEYS[1] and knows no layouts: beside
  a layout-2 fleet it would get in, and every layout-2 process would then be refused at its next
  renewal, leaving the old code alone on new data. So KEYS[1] also holds a guard entry (field
  'layout-guard', renewed with every entry, expiring with the newest) whose sealing key fingerprint
  ('0') no real key has (those are 32 hex digits): the old script counts it as a key conflict and
  refuses to start. This script skips it.

  KEYS[1] holders  hash: process id -> "<expires at ms>|<sealing key fp>|<fp>,<fp>,…" (the keys it opens)
  KEYS[2] layouts  hash: process id -> data layout version, beside KEYS[1] (same slot: KEYS[1] is its
                   hash tag). An entry of KEYS[1] without one is a process from before layouts were
                   recorded: layout 1 (the compact payment hash and the bucketed list index).
  ARGV[1] now (ms)
  ARGV[2] this entry's expiry (ms); also the tables' own TTL from now
  ARGV[3] this process's id
  ARGV[4] fingerprint of its sealing key
  ARGV[5] fingerprints of every key it opens, comma-separated
  ARGV[6] its data layout version

  Returns {key conflicts, layout conflicts, a layout version seen that differs ('' when none)};
  {0, 0, ''} when registered (or renewed), else nothing is written.
]]
local now = tonumber(ARGV[1])
local mine = ',' .. ARGV[5] .. ','
local conflicts, layoutConflicts, otherLayout = 0, 0, ''
local guard = 'layout-guard'
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local id = entries[i]
  if id ~= ARGV[3] and id ~= guard then
    local expires, sealing, opens = string.match(entries[i + 1], '^(%d+)|(%x+)|([%x,]+)$')
    if not expires or tonumber(expires) <= now then
      redis.call('HDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
    else
      if not string.find(mine, ',' .. sealing .. ',', 1, true)
        or not string.find(',' .. opens .. ',', ',' .. ARGV[4] .. ',', 1, true) then
        conflicts = conflicts + 1
      end
      local layout = redis.call('HGET', KEYS[2], id) or '1'
      if layout ~= ARGV[6] then
        layoutConflicts = layoutConflicts + 1
        otherLayout = layout
      end
    end
  end
end
if conflicts > 0 or layoutConflicts > 0 then return {conflicts, layoutConflicts, otherLayout} end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[2] .. '|' .. ARGV[4] .. '|' .. ARGV[5])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[6])
local guarded = tonumber(string.match(redis.call('HGET', KEYS[1], guard) or '', '^(%d+)|') or 0)
if guarded < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], guard, ARGV[2] .. '|0|0') end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) - now)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) - now)
return {0, 0, ''}
