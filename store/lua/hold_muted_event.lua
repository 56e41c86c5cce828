-- Holds an event muted by a maintenance window until the muting ends (store/window_hold.py).
-- KEYS: due zset. ARGV: member (route|end ms|destination), end ms, item JSON, open prefix,
-- flushed prefix, ttl ms. Returns 1, or 0 when that muting was already summarised (a worker
-- whose clock is late): the caller delivers the event instead.
local m = ARGV[1]
if redis.call('EXISTS', ARGV[5] .. m) == 1 then
  return 0
end
redis.call('RPUSH', ARGV[4] .. m, ARGV[3])
redis.call('PEXPIRE', ARGV[4] .. m, ARGV[6])
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], m)
return 1
