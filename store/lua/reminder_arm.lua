-- Arms a reminder (store/reminders.py, Reminders.arm).
-- KEYS: the reminder's record, due zset, the resource's reminder set, its ack, seen hash.
-- ARGV: member, rkey, has state ("1"/"0"), state, seq, period, first due, event JSON, route,
-- destination, armed at, the watch it lasts for (the rkey, or its scan's). Returns 1 armed, 0
-- already armed or stale, -1 acknowledged.
local seq = tonumber(ARGV[5])
local state = ARGV[4]
local seen = redis.call('HGET', KEYS[5], ARGV[2])
if seen then
  local sseq, kind, sstate = string.match(seen, '^(%d+)|(%a)|(.*)$')
  sseq = tonumber(sseq)
  if sseq then
    if kind == 'g' and sseq >= seq then return 0 end      -- gone since
    if ARGV[3] == '0' then
      if kind == 's' then
        if sseq > seq then return 0 end                    -- a later event moved it on: stale
        state = sstate                                     -- the state it is in now
      end
    elseif sseq > seq and sstate ~= state then
      return 0                                             -- a later event moved it on: stale
    end
  end
end
local acked = redis.call('HGET', KEYS[4], 'state')
if acked and acked == state then return -1 end
if redis.call('HGET', KEYS[1], 'state') == state then return 0 end  -- keeps its count and rhythm
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'rkey', ARGV[2], 'route', ARGV[9], 'destination', ARGV[10], 'state', state,
           'period', ARGV[6], 'sent', 0, 'seq', ARGV[5], 'event', ARGV[8], 'armed_at', ARGV[11],
           'watch', ARGV[12])
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
