-- acquire.lua: take one slot of a concurrency limit, as a lease that runs
-- out unless renewed.
--
-- KEYS[1]  the pool, a sorted set of lease ids scored by expiry time.
-- ARGV[1]  limit, the number of slots.
-- ARGV[2]  the new lease's id.
-- ARGV[3]  the lease's time to live, microseconds.
--
-- Leases that ran out are dropped first: their holders died or overran.
-- Taking a lease id already held renews it, so a retried call whose reply
-- was lost takes no second slot.
--
-- Returns {1, 0} when the slot is taken, else {0, next}: next is the time
-- until the first held lease runs out, microseconds.
--
-- Time: the Redis server clock (TIME), integer microseconds since the
-- epoch; scores are expiry times on that clock.

local key = KEYS[1]
local limit = tonumber(ARGV[1])
local id = ARGV[2]
local ttl = tonumber(ARGV[3])

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
local held = redis.call('ZCARD', key)
if held >= limit and not redis.call('ZSCORE', key, id) then
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, tonumber(first[2]) - now}
end

redis.call('ZADD', key, string.format('%.0f', now + ttl), id)
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
-- Expire once the last lease has run out, with a second to spare.
redis.call('PEXPIRE', key, math.ceil((tonumber(last[2]) - now) / 1000) + 1000)
return {1, 0}
