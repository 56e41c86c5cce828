-- Takes the delivery marks of one batch's events (store/deliveries.py).
-- KEYS: the delivery marks. ARGV[1]: the owner (the batch job's id), ARGV[2]: the lease in seconds.
-- A mark is taken when free, or taken again by the same batch job (ARQ re-running it after a
-- Redis error or a cancel); "done" or another batch's lease is left alone. Returns 1/0 per key.
local out = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if not owner or owner == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'EX', tonumber(ARGV[2]))
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
