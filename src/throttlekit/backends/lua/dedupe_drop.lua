-- dedupe_drop.lua: end a leader's claim without a result (Dedupe across
-- processes).
--
-- KEYS[1]  the claim, a hash (see dedupe_claim.lua).
-- ARGV[1]  the leader's token.
-- ARGV[2]  1 to end it only if no caller joined it (a withdrawal: the
--          leader keeps its response to itself); 0 to end it anyway (the
--          leader gave up, and a caller that joined takes over).
--
-- Returns 1 when the claim was ended, 0 when it is not the leader's (it
-- ran out) or, with ARGV[2] = 1, when a caller joined it.
--
-- Time: not used.

if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then
  return 0
end
local joined = tonumber(redis.call('HGET', KEYS[1], 'j')) or 0
if ARGV[2] == '1' and joined > 0 then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
