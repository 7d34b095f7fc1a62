-- gate.lua: read a key's pacing gate and the time, for learn.lua.
--
-- KEYS[1]  the gate, a hash; "v" is its version, bumped by every write.
--
-- Returns {now, field_1, value_1, ...}: the server time, seconds since the
-- epoch as a string, then the gate's fields. The caller applies what a
-- response taught (throttlekit._core.pacing.learn) and writes the result
-- back with learn.lua, which refuses it if the gate changed meanwhile.
--
-- Time: the Redis server clock (TIME), seconds since the epoch.

local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local out = {string.format('%.17g', now)}
for _, value in ipairs(redis.call('HGETALL', KEYS[1])) do
  out[#out + 1] = value
end
return out
