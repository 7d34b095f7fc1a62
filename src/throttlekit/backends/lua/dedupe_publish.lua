-- dedupe_publish.lua: end a leader's claim and leave its outcome for the
-- callers that joined it (Dedupe across processes).
--
-- KEYS[1]  the claim, a hash (see dedupe_claim.lua).
-- KEYS[2]  the result, a hash: t, at, k, m, b (see dedupe_claim.lua).
-- ARGV[1]  the leader's token.
-- ARGV[2]  the result's time to live, milliseconds.
-- ARGV[3]  the kind: s a shared response, f a failure, d a refusal.
-- ARGV[4]  the metadata, JSON text.
-- ARGV[5]  the body, bytes; empty but for a shared response.
--
-- Only the claim's holder ends the claim. A leader that lost its claim
-- (it overran the ttl, and another caller took over) still stores a
-- shared response, the answer to the same request, for callers within
-- the window; its other outcomes concern nobody any more.
--
-- Returns 1 when the result was stored, else 0.
--
-- Time: the Redis server clock (TIME), integer milliseconds since the
-- epoch, stored as "at".

local holder = redis.call('HGET', KEYS[1], 'o')
local owner = holder == ARGV[1]
if not owner and ARGV[3] ~= 's' then
  return 0
end
if owner then
  redis.call('DEL', KEYS[1])
end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 't', ARGV[1], 'at', now, 'k', ARGV[3],
  'm', ARGV[4], 'b', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
