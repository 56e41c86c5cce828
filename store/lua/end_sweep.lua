-- A scan's sweep reached its end (Store.end_sweep): the ids it listed, with ARGV[1] if given
-- (one entry: ids it did not list but that are not gone: a listing's page boundaries moved,
-- or the GET that would confirm it failed or waits for the next sweep), become the last full
-- sweep. KEYS[1]: the sweep in progress, KEYS[2]: the last full sweep (LISTs of entries,
-- store/sweeps.py).
if ARGV[1] then
  redis.call('RPUSH', KEYS[1], ARGV[1])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
return 1
