-- One worker's heartbeat in the worker registry (store/registry.py).
-- KEYS[1]: sh:workers (ZSET worker id -> when its beat runs out), KEYS[2]: sh:workers:beat (HASH
-- worker id -> its beat, JSON). ARGV[1]: the worker id, ARGV[2]: its beat, ARGV[3]: when it runs
-- out, ARGV[4]: now (unix seconds, the caller's clock).
-- Drops the workers whose beat ran out (from both keys), keeps the keys only as long as the last
-- beat lasts (a registry every worker left without a word is gone by itself), and returns how
-- many workers are live.
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  local ttl_ms = math.ceil((tonumber(last[2]) - tonumber(ARGV[4])) * 1000)
  if ttl_ms > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl_ms)
    redis.call('PEXPIRE', KEYS[2], ttl_ms)
  end
end
return redis.call('ZCARD', KEYS[1])
