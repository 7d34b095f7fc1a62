-- reserve.lua: take places in one rate bucket's line, for one request or a
-- batch of requests, all the bucket's limits decided together (GCRA).
--
-- KEYS[1]  the bucket, a string: "<owner> <tat_1> ... <tat_n>", where owner
--          is the token of the last reservation charged ("-" when none) and
--          tat_j the theoretical arrival time of limit j. A bucket holding
--          as many times as there are limits keeps its schedule even when
--          the limits changed (policies sharing a name); one holding
--          another number starts over from idle.
-- ARGV[1]  the limits' tolerances (burst * interval), space separated:
--          "<tol_1> ... <tol_n>", microseconds.
-- ARGV[2 ..]  one per request, in the order the requests arrived, space
--          separated: "<max_wait> <token> <inc_1> ... <inc_n>":
--   max_wait        the longest wait the caller accepts, microseconds;
--                   -1 for no bound.
--   token           the caller's random id for the reservation.
--   inc_j           the request's charge on limit j (cost * interval),
--                   microseconds.
--
-- Few arguments, each a short string, keep the call cheap to send.
--
-- Returns one string, space separated: the server time and the owner
-- before the first request, then 2+n values per request: 1 and its wait
-- when it was charged, followed by the theoretical arrival times before it
-- was charged (cancel.lua restores them); or 0 and the wait it would have
-- had, followed by n zeros, when that wait exceeded max_wait and nothing
-- was charged. One string is cheaper for clients to read than an array.
--
-- Time: the Redis server clock (TIME), integer microseconds since the
-- epoch; every number here is an integer number of microseconds.

-- Lua 5.1 prints numbers with 14 digits; timestamps need 16.
local function int(x)
  return string.format('%.0f', x)
end

local key = KEYS[1]
local tol = {}
for value in string.gmatch(ARGV[1], '%S+') do
  tol[#tol + 1] = tonumber(value)
end
local n = #tol

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local owner = '-'
local tats = {}
local state = redis.call('GET', key)
if state then
  local held_owner, held_tats = string.match(state, '^(%S+) (.*)$')
  for tat in string.gmatch(held_tats, '%S+') do
    tats[#tats + 1] = tonumber(tat)
  end
  owner = held_owner
end
if #tats ~= n then
  -- A new bucket, or one held with another number of limits: start idle.
  owner = '-'
  tats = {}
  for j = 1, n do
    tats[j] = now
  end
end

local out = {int(now), owner}
local charged = false
for i = 2, #ARGV do
  local max_wait, token, charges = string.match(ARGV[i], '^(%S+) (%S+) (.*)$')
  local inc = {}
  for value in string.gmatch(charges, '%S+') do
    inc[#inc + 1] = tonumber(value)
  end
  local wait = 0
  for j = 1, n do
    local due = math.max(tats[j], now) + inc[j] - tol[j] - now
    if due > wait then
      wait = due
    end
  end

  max_wait = tonumber(max_wait)
  if max_wait >= 0 and wait > max_wait then
    out[#out + 1] = '0'
    out[#out + 1] = int(wait)
    for _ = 1, n do
      out[#out + 1] = '0'
    end
  else
    -- Charge every limit as if the request arrived at its admission time.
    local admit = now + wait
    out[#out + 1] = '1'
    out[#out + 1] = int(wait)
    for j = 1, n do
      out[#out + 1] = int(tats[j])
      tats[j] = math.max(tats[j], admit) + inc[j]
    end
    owner = token
    charged = true
  end
end

if charged then
  local idle = now
  local parts = {owner}
  for j = 1, n do
    parts[1 + j] = int(tats[j])
    idle = math.max(idle, tats[j])
  end
  -- Expire once the bucket is idle again, with a second to spare.
  local ttl = math.ceil((idle - now) / 1000) + 1000
  redis.call('SET', key, table.concat(parts, ' '), 'PX', ttl)
end
return table.concat(out, ' ')
