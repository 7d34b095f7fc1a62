-- paused.lua: how long a key's pacing line stays paused (HeaderPacing).
--
-- KEYS[1]  the gate, a hash (see learn.lua); read here: paused_until.
--
-- Returns the seconds left of the pause, 0 when not paused, as a string.
--
-- Time: the Redis server clock (TIME), seconds since the epoch as a
-- double; paused_until is on that clock.

local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local paused_until = tonumber(redis.call('HGET', KEYS[1], 'paused_until')) or 0
return string.format('%.17g', math.max(0, paused_until - now))
