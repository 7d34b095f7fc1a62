-- cancel.lua: give back a reservation made by reserve.lua.
--
-- KEYS[1]  the bucket, a string (see reserve.lua).
-- KEYS[2]  the bucket's marks, a hash: token -> "<prev> <tat_1> ... <tat_n>",
--          reservations given back from the middle of the line.
-- KEYS[3]  the same marks, a sorted set of tokens scored by admission time.
-- ARGV[1]  the reservation's token.
-- ARGV[2]  the token of the reservation charged just before it ("-" none).
-- ARGV[3]  its admission time, microseconds.
-- ARGV[4 ..]  the theoretical arrival times before it was charged, one per
--          limit, microseconds.
--
-- The last reservation in line is undone: the bucket gets back the times
-- from before it was charged. So is every marked reservation that becomes
-- last that way. A reservation given back from the middle of the line is
-- only marked, and undone once the ones behind it are given back too; until
-- then the line keeps its pace, so the bucket never admits more than its
-- limits. A mark is forgotten once its admission time has come, as its
-- caller is gone by then.
--
-- Returns 1 when the bucket was given time back, else 0 (marked, already
-- given back, or the bucket started over).
--
-- Time: the Redis server clock (TIME), integer microseconds since the
-- epoch.

local token = ARGV[1]
local admit = tonumber(ARGV[3])

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local state = redis.call('GET', KEYS[1])
if not state then
  return 0
end
local owner = string.match(state, '^(%S+) ')

local spent = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
if #spent > 0 then
  redis.call('HDEL', KEYS[2], unpack(spent))
  redis.call('ZREM', KEYS[3], unpack(spent))
end

if owner ~= token then
  if admit > now then
    local mark = {ARGV[2]}
    for j = 4, #ARGV do
      mark[j - 2] = ARGV[j]
    end
    redis.call('HSET', KEYS[2], token, table.concat(mark, ' '))
    redis.call('ZADD', KEYS[3], admit, token)
    -- Marks live no longer than the bucket does now.
    local ttl = redis.call('PTTL', KEYS[1])
    redis.call('PEXPIRE', KEYS[2], ttl)
    redis.call('PEXPIRE', KEYS[3], ttl)
  end
  return 0
end

local tats = {}
for j = 4, #ARGV do
  tats[j - 3] = ARGV[j]
end
owner = ARGV[2]
while owner ~= '-' do
  local mark = redis.call('HGET', KEYS[2], owner)
  if not mark then
    break
  end
  redis.call('HDEL', KEYS[2], owner)
  redis.call('ZREM', KEYS[3], owner)
  local prev, rest = string.match(mark, '^(%S+) (.*)$')
  tats = {}
  for tat in string.gmatch(rest, '%S+') do
    tats[#tats + 1] = tat
  end
  owner = prev
end

local idle = now
for j = 1, #tats do
  idle = math.max(idle, tonumber(tats[j]))
end
local ttl = math.ceil((idle - now) / 1000) + 1000
redis.call('SET', KEYS[1], owner .. ' ' .. table.concat(tats, ' '), 'PX', ttl)
return 1
