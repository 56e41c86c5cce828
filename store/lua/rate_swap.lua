-- The rate schedule's write-back (store/rates.py): the arithmetic is done in Python, this
-- only makes the write conditional, so that two workers never both take the same slots.
-- KEYS[1]: the schedule. ARGV: the value read ('' for none), the value to write, its expiry (ms).
-- Writes only if the key still holds the value read. Returns 1 if it wrote, else 0 (read again).
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
