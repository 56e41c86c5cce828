-- A destination's circuit written back (store/circuit.py): the rules are applied in Python
-- (core/circuit.py), this only makes the write conditional, so that two workers never both
-- act on one transition.
-- KEYS[1]: the circuit record, KEYS[2]: the set of destinations whose circuit is not closed,
-- KEYS[3]: the destination's held deliveries (ZSET).
-- ARGV: the record read ('' for none), the record to write ('' deletes it), the destination,
-- '1' if the new record is not closed, '1' if the write needs the held set to be empty.
-- Returns 1 if it wrote, 0 if the record changed in between (read again), -1 if deliveries
-- are still held (the write that closes waits for them).
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
if ARGV[5] == '1' and redis.call('ZCARD', KEYS[3]) > 0 then return -1 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
if ARGV[4] == '1' then redis.call('SADD', KEYS[2], ARGV[3]) else redis.call('SREM', KEYS[2], ARGV[3]) end
return 1
