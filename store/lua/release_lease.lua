-- A scheduler claim whose answer was lost (Store.release_lease): Redis may have run it, and
-- then what it claimed is leased with nobody to poll it. KEYS[1]: sh:due. ARGV[1]: that
-- claim's lease (its exact score: no other claim writes the same), ARGV[2]: the due time
-- to give them back. Returns how many were leased by it and are due again.
local leased = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
local args = {}
for i = 1, #leased do
  args[#args + 1] = ARGV[2]
  args[#args + 1] = leased[i]
  if #args == 1000 or i == #leased then
    redis.call('ZADD', KEYS[1], 'XX', unpack(args))
    args = {}
  end
end
return #leased
