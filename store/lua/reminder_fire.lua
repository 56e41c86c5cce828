-- Sends one claimed reminder (store/reminders.py, Reminders.fire), or disarms it when the
-- resource left the arming state, was acknowledged, unwatched, or its state record is lost.
-- Guarded by the count the claim read: a reminder is sent once per period however many
-- steps race.
-- KEYS: the record, due zset, the resource's reminder set, its ack, seen hash, state hash,
-- meta hash, outbox, the resource's record and old timeline list (_record.lua), stats.
-- ARGV: member, rkey, sent (as claimed), state (as claimed), next due, event JSON, note,
-- history length, stats field.
--#include _record
local function disarm(why)
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[1])
  return why
end
local rec = redis.call('HMGET', KEYS[1], 'sent', 'state', 'watch')
if not rec[1] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[1])
  return 'disarmed'
end
if rec[1] ~= ARGV[3] or rec[2] ~= ARGV[4] then return 'raced' end
if redis.call('HEXISTS', KEYS[6], ARGV[2]) == 0 then return disarm('lost') end
if redis.call('HEXISTS', KEYS[7], rec[3] or ARGV[2]) == 0 then return disarm('unwatched') end  -- its own or its scan's
local acked = redis.call('HGET', KEYS[4], 'state')
if acked and acked == rec[2] then return disarm('acknowledged') end
local seen = redis.call('HGET', KEYS[5], ARGV[2])
if seen then
  local kind, state = string.match(seen, '^%d+|(%a)|(.*)$')
  if kind == 'g' then return disarm('gone') end
  if kind == 's' and state ~= rec[2] then return disarm('changed') end
end
redis.call('XADD', KEYS[8], '*', 'e', ARGV[6])
redis.call('HSET', KEYS[1], 'sent', tonumber(ARGV[3]) + 1)
redis.call('HDEL', KEYS[1], 'claimed')
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
record_write(KEYS[9], KEYS[10], false, {ARGV[7]}, tonumber(ARGV[8]))
redis.call('HINCRBY', KEYS[11], ARGV[9], 1)
return 'sent'
