-- Where a resource is now (store/reminders.py, Reminders.seen): its reminders of another
-- state, and an acknowledgement of another state, go. An event older than one already seen
-- changes nothing (an outbox entry reclaimed late).
-- KEYS: the resource's reminder set, seen hash, its ack, due zset.
-- ARGV: rkey, seq, kind ("s" a state, "g" gone), state, record key prefix.
-- Returns the reminders disarmed, or -1 for a stale event.
local seq = tonumber(ARGV[2])
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then
  local oseq = tonumber(string.match(old, '^(%d+)|'))
  if oseq and oseq > seq then return -1 end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
local acked = redis.call('HGET', KEYS[3], 'state')
if acked and (ARGV[3] == 'g' or acked ~= ARGV[4]) then redis.call('DEL', KEYS[3]) end
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local rk = ARGV[5] .. m
  if ARGV[3] == 'g' or redis.call('HGET', rk, 'state') ~= ARGV[4] then
    redis.call('DEL', rk)
    redis.call('ZREM', KEYS[4], m)
    redis.call('SREM', KEYS[1], m)
    n = n + 1
  end
end
return n
