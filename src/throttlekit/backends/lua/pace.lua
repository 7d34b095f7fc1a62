-- pace.lua: take the next place on a key's pacing line (HeaderPacing); the
-- arithmetic of throttlekit._core.pacing.admit.
--
-- KEYS[1]  the gate, a hash of what responses taught (see learn.lua); read
--          here: interval, interval_until, paused_until, rate.
-- KEYS[2]  the line, a string: its theoretical arrival time "tat".
-- ARGV[1]  jitter, a fraction in [0, 1) chosen by the caller.
-- ARGV[2]  spread, seconds over which paused callers resume; at most
--          1 / rate when the rate is adaptive.
-- ARGV[3]  the adaptive rate's ceiling, calls per second; 0 when the rate
--          is not adaptive.
-- ARGV[4]  max_wait, the longest wait the caller accepts, seconds; -1 for
--          no bound.
--
-- Returns one string, space separated: 1, the wait in seconds, whether the
-- line is paused (1 or 0), the tat before and after, exactly as stored; or
-- 0, the wait it would have had and whether the line is paused, when that
-- wait exceeded max_wait and nothing was taken.
--
-- Time: the Redis server clock (TIME), in seconds since the epoch as a
-- double; every time here is on that clock, in seconds.

local function num(x)
  return string.format('%.17g', x)
end

local jitter = tonumber(ARGV[1])
local spread = tonumber(ARGV[2])
local ceiling = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])

local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

local gate = redis.call('HMGET', KEYS[1], 'interval', 'interval_until', 'paused_until', 'rate')
local interval = tonumber(gate[1]) or 0
local interval_until = tonumber(gate[2]) or 0
local paused_until = tonumber(gate[3]) or 0
local rate = tonumber(gate[4]) or 0
local before = redis.call('GET', KEYS[2]) or '0'

if ceiling > 0 then
  if rate <= 0 then
    rate = ceiling
  end
  -- The line spaces the callers resuming after a pause; a spread longer
  -- than one spacing would only leave the server idle before the first.
  spread = math.min(spread, 1 / rate)
end

local start = math.max(now, tonumber(before))
local paused = paused_until > now
if paused then
  start = math.max(start, paused_until + jitter * spread)
end
if start >= interval_until then
  interval = 0
end
if ceiling > 0 then
  interval = math.max(interval, 1 / rate)
end

local wait = start - now
local flag = paused and '1' or '0'
if max_wait >= 0 and wait > max_wait then
  return table.concat({'0', num(wait), flag}, ' ')
end

local after = num(start + interval)
-- Expire once the line is free again, with a second to spare.
local ttl = math.ceil((start + interval - now) * 1000) + 1000
redis.call('SET', KEYS[2], after, 'PX', ttl)
return table.concat({'1', num(wait), flag, before, after}, ' ')
