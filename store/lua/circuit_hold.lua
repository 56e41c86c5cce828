-- Holds deliveries while a destination's circuit is not closed (store/circuit.py), in one
-- step with reading its status: a circuit that closes (only once nothing is held, see
-- circuit_swap.lua) never leaves a delivery behind.
-- KEYS[1]: the circuit record, KEYS[2]: held ids (ZSET, scored by arrival), KEYS[3]: held
-- entries (HASH id -> entry), KEYS[4]: the arrival counter.
-- ARGV: id, entry, id, entry, ... An id already held keeps its place; its entry is replaced.
-- Returns 1 if held, 0 if the circuit is closed (nothing was held: send them).
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, record = pcall(cjson.decode, raw)
if not ok or type(record) ~= 'table' or record['status'] == 'closed' then return 0 end
for i = 1, #ARGV, 2 do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ARGV[i])
  end
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
return 1
