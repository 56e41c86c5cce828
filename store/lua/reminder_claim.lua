-- Claims the reminders that are due (store/reminders.py, Reminders.claim): each is leased
-- (its due time moves to ARGV[2]) so that no other worker's step takes it; one whose step
-- died is due again when the lease ends. The due time it was claimed at stays in the record
-- (`claimed`, until a send moves it on) and is the one returned to the step that takes it
-- after a dead one, so that the next reminder keeps the rhythm of the grid, not the lease's.
-- KEYS: due zset. ARGV: now, lease end, limit, record key prefix.
-- Returns, per claimed reminder: member, due, then the record's fields in Reminders' order.
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #due, 2 do
  local m = due[i]
  local rec = redis.call('HMGET', ARGV[4] .. m, 'rkey', 'route', 'destination', 'state', 'period', 'sent', 'seq',
                         'event', 'armed_at')
  if rec[1] and rec[8] then
    local claimed = redis.call('HGET', ARGV[4] .. m, 'claimed')
    if not claimed then
      claimed = due[i + 1]
      redis.call('HSET', ARGV[4] .. m, 'claimed', claimed)
    end
    redis.call('ZADD', KEYS[1], ARGV[2], m)
    table.insert(out, m)
    table.insert(out, claimed)
    for j = 1, 9 do table.insert(out, rec[j] or '') end
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
