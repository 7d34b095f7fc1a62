-- spend.lua: take one retry from a budget; the arithmetic of
-- throttlekit._core.budget.withdraw.
--
-- KEYS[1]  the budget, a string: its token count. Missing means full.
-- ARGV[1]  cap, the most tokens saved up.
-- ARGV[2]  the budget's time to live, milliseconds; after that long
--          unused it is forgotten, that is full again.
--
-- Returns 1 when the retry may go (one token taken), 0 when less than one
-- token is left (nothing taken).
--
-- Time: not used.

local tokens = tonumber(redis.call('GET', KEYS[1])) or tonumber(ARGV[1])
if tokens < 1 then
  return 0
end
redis.call('SET', KEYS[1], string.format('%.17g', tokens - 1), 'PX', ARGV[2])
return 1
