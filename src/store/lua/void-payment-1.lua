--[[
  Settles whether a payment whose creation is in doubt exists (its create ran, or its reply was lost,
  or it may still land: a command sent again after "Connection is closed", a hung node resuming).
  If it is not there, its id is voided: a status no version knows, which the create in
  transition-6.lua (it must find no status) then refuses and every reader takes for no payment. So
  the answer is final: the payment exists, or it never will.

  KEYS[1] payment hash
  ARGV[1] the void status, ARGV[2] seconds the void mark is kept (longer than any create can be late)

  Returns 1 when the id is void (now or before), 0 when the payment exists.
]]
local status = redis.call('HGET', KEYS[1], 'status')
if status == ARGV[1] then return 1 end
if status then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
