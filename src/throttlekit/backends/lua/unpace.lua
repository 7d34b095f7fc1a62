-- unpace.lua: give back a place taken by pace.lua, when it is the last.
--
-- KEYS[1]  the line, a string: its theoretical arrival time "tat".
-- ARGV[1]  the tat before the place was taken, as pace.lua returned it.
-- ARGV[2]  the tat after, as pace.lua returned and stored it.
--
-- Only the newest place is given back: a later caller's start was computed
-- from this one's, so undoing an earlier place would let calls run closer
-- together than the line allows.
--
-- Returns 1 when the place was given back, else 0.
--
-- Time: not used; the line keeps its expiry.

if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
return 1
