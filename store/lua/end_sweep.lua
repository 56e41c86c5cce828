-- A scan's sweep reached its end (Store.end_sweep): the ids it listed, with ARGV (ids it did
-- not list but that are not gone: a listing's page boundaries moved, or the GET that would
-- confirm it failed or waits for the next sweep), become the last full sweep.
-- KEYS[1]: the sweep in progress (SET), KEYS[2]: the last full sweep (SET).
for i = 1, #ARGV, 1000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
return 1
