-- dedupe_claim.lua: lead a request, follow its leader, or take its result
-- (Dedupe across processes).
--
-- KEYS[1]  the claim, a hash: o = the leading caller's token, j = how many
--          callers in other processes joined it. It expires after its ttl,
--          so a leader that died holds it no longer than that.
-- KEYS[2]  the result, a hash written by dedupe_publish.lua: t = its
--          leader's token, at = when it was published, k = its kind
--          (s a shared response, f a failure, d a refusal to share),
--          m = metadata, b = the body.
-- ARGV[1]  the caller's token, used if it leads.
-- ARGV[2]  the claim's time to live, milliseconds.
-- ARGV[3]  the window, milliseconds: a shared response published less
--          than this long ago is taken by any caller; 0 for none.
-- ARGV[4]  the token of the leader the caller follows; "" for a caller
--          that has not joined yet.
--
-- A caller takes the result of the leader it follows whatever its kind and
-- age, so a failure reaches exactly the callers that joined. A caller whose
-- leader left neither a claim nor a result (it died, was cancelled, or
-- overran the ttl) takes the claim over.
--
-- Returns {'done', kind, meta, body}, {'lead'}, or {'wait', holder, ttl}:
-- holder is the leading token, ttl the claim's time left, milliseconds.
--
-- Time: the Redis server clock (TIME), integer milliseconds since the
-- epoch; "at" is on that clock.

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window = tonumber(ARGV[3])
local followed = ARGV[4]

local result = redis.call('HMGET', KEYS[2], 't', 'at', 'k', 'm', 'b')
if result[1] then
  local mine = followed ~= '' and result[1] == followed
  local fresh = result[3] == 's' and now - tonumber(result[2]) < window
  if mine or fresh then
    return {'done', result[3], result[4], result[5]}
  end
end

local holder = redis.call('HGET', KEYS[1], 'o')
if not holder then
  redis.call('HSET', KEYS[1], 'o', ARGV[1], 'j', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'lead'}
end

if holder ~= followed then
  redis.call('HINCRBY', KEYS[1], 'j', 1)
end
return {'wait', holder, redis.call('PTTL', KEYS[1])}
