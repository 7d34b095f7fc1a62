-- earn.lua: credit a retry budget for one first attempt; the arithmetic
-- of throttlekit._core.budget.deposit.
--
-- KEYS[1]  the budget, a string: its token count. Missing means full.
-- ARGV[1]  ratio, tokens each first attempt earns.
-- ARGV[2]  cap, the most tokens saved up.
-- ARGV[3]  the budget's time to live, milliseconds; after that long
--          unused it is forgotten, that is full again.
--
-- Returns the token count after the deposit, as a string.
--
-- Time: not used.

local ratio = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local tokens = math.min(cap, (tonumber(redis.call('GET', KEYS[1])) or cap) + ratio)
if tokens >= cap then
  -- Full is the default state: nothing to keep.
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.17g', tokens), 'PX', ARGV[3])
end
return string.format('%.17g', tokens)
