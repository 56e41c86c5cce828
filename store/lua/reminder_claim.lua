-- Claims the reminders that are due (store/reminders.py, Reminders.claim): each is leased
-- (its due time moves to ARGV[2]) so that no other worker's step takes it; one whose step
-- died is due again when the lease ends.
-- KEYS: due zset. ARGV: now, lease end, limit, record key prefix.
-- Returns, per claimed reminder: member, due, then the record's fields in Reminders' order.
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #due, 2 do
  local m = due[i]
  local rec = redis.call('HMGET', ARGV[4] .. m, 'rkey', 'route', 'destination', 'state', 'period', 'sent', 'seq',
                         'event', 'armed_at')
  if rec[1] and rec[8] then
    redis.call('ZADD', KEYS[1], ARGV[2], m)
    table.insert(out, m)
    table.insert(out, due[i + 1])
    for j = 1, 9 do table.insert(out, rec[j] or '') end
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
