-- Claims the digest windows that have ended (store/digests.py, DigestBuffer.claim).
-- KEYS: due zset, claimed zset. ARGV: now ms, due cutoff ms, stale cutoff ms, open prefix,
-- taken prefix, flushed prefix, limit, flushed ttl ms. Claims ended windows and stale claims.
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[7]))
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('SET', ARGV[6] .. m, '1', 'PX', ARGV[8])
  local src = ARGV[4] .. m
  if redis.call('EXISTS', src) == 1 then
    local dst = ARGV[5] .. m
    if redis.call('EXISTS', dst) == 1 then
      for _, item in ipairs(redis.call('LRANGE', src, 0, -1)) do redis.call('RPUSH', dst, item) end
      redis.call('DEL', src)
    else
      redis.call('RENAME', src, dst)
    end
    redis.call('PERSIST', dst)
    redis.call('ZADD', KEYS[2], ARGV[1], m)
    table.insert(out, m)
  end
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[7]))
for _, m in ipairs(stale) do
  redis.call('ZADD', KEYS[2], ARGV[1], m)
  table.insert(out, m)
end
return out
