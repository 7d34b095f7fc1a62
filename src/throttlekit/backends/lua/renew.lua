-- renew.lua: extend a lease taken by acquire.lua.
--
-- KEYS[1]  the pool, a sorted set of lease ids scored by expiry time.
-- ARGV[1]  the lease's id.
-- ARGV[2]  the lease's new time to live from now, microseconds.
--
-- A lease that already ran out is not revived: its slot may have gone to
-- someone else.
--
-- Returns 1 when the lease was held and now runs until now + ttl, else 0.
--
-- Time: the Redis server clock (TIME), integer microseconds since the
-- epoch; scores are expiry times on that clock.

local key = KEYS[1]
local id = ARGV[1]
local ttl = tonumber(ARGV[2])

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local expiry = tonumber(redis.call('ZSCORE', key, id))
if not expiry then
  return 0
end
if expiry <= now then
  redis.call('ZREM', key, id)
  return 0
end

redis.call('ZADD', key, 'XX', string.format('%.0f', now + ttl), id)
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', key, math.ceil((tonumber(last[2]) - now) / 1000) + 1000)
return 1
