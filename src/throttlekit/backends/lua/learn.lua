-- learn.lua: write a key's pacing gate back, unless it changed since it
-- was read (compare and set).
--
-- KEYS[1]  the gate, a hash; "v" is its version, bumped by every write.
-- ARGV[1]  the version read by gate.lua; "" when the gate did not exist;
--          "*" to write whatever the version (a last resort after many
--          conflicts, when losing another client's lesson beats losing
--          this one).
-- ARGV[2]  the gate's time to live, milliseconds.
-- ARGV[3 ..]  field, value pairs: the gate after the lesson; times are
--          seconds on the Redis server's clock.
--
-- Returns 1 when written, 0 when another client wrote first (read again
-- and retry).
--
-- Time: not used; the caller computed with the time gate.lua returned.

local version = redis.call('HGET', KEYS[1], 'v') or ''
if version ~= ARGV[1] and ARGV[1] ~= '*' then
  return 0
end

local values = {'v', (tonumber(version) or 0) + 1}
for i = 3, #ARGV do
  values[#values + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(values))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
