-- Acknowledges a resource's state (store/reminders.py, Reminders.ack): its reminders of that
-- state are disarmed, the acknowledgement is kept (a later arming in the same state is
-- refused) and noted in the timeline.
-- KEYS: the resource's reminder set, its ack, due zset, its record and old timeline list
-- (_record.lua).
-- ARGV: state, author, comment, at, note, history length, record key prefix.
-- Returns how many reminders it disarmed (0: none of that state was armed; nothing done).
--#include _record
local stopped = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local rk = ARGV[7] .. m
  if redis.call('HGET', rk, 'state') == ARGV[1] then
    redis.call('DEL', rk)
    redis.call('ZREM', KEYS[3], m)
    redis.call('SREM', KEYS[1], m)
    stopped = stopped + 1
  end
end
if stopped == 0 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'state', ARGV[1], 'author', ARGV[2], 'comment', ARGV[3], 'at', ARGV[4])
record_write(KEYS[4], KEYS[5], false, {ARGV[5]}, tonumber(ARGV[6]))
return stopped
