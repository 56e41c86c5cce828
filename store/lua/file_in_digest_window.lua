-- Files an event under its digest window (store/digests.py, DigestBuffer.add).
-- KEYS: due zset. ARGV: route, window ms, start ms, destination, event JSON, open prefix,
-- flushed prefix, ttl ms. Files the event under its window, or the next open one if that
-- window was already flushed (a worker whose clock is late). Returns the member.
local start = tonumber(ARGV[3])
local w = tonumber(ARGV[2])
for _ = 1, 10 do
  local m = ARGV[1] .. '|' .. ARGV[2] .. '|' .. string.format('%d', start) .. '|' .. ARGV[4]
  if redis.call('EXISTS', ARGV[7] .. m) == 0 then
    redis.call('RPUSH', ARGV[6] .. m, ARGV[5])
    redis.call('PEXPIRE', ARGV[6] .. m, ARGV[8])
    redis.call('ZADD', KEYS[1], 'NX', start + w, m)
    return m
  end
  start = start + w
end
return false
