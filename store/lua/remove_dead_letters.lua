-- Removes dead letters and keeps the per-destination count with them (store/deliveries.py).
-- KEYS[1]: sh:dlq (STREAM), KEYS[2]: sh:dlq:n (HASH destination -> entries). ARGV: entry ids.
-- Returns how many of them were in the stream (an id removed already, or never there, is none).
local removed = 0
for _, id in ipairs(ARGV) do
  local entry = redis.call('XRANGE', KEYS[1], id, id)
  if #entry > 0 then
    local fields, destination = entry[1][2], nil
    for i = 1, #fields, 2 do
      if fields[i] == 'destination' then destination = fields[i + 1] end
    end
    redis.call('XDEL', KEYS[1], id)
    removed = removed + 1
    if destination and redis.call('HINCRBY', KEYS[2], destination, -1) <= 0 then
      redis.call('HDEL', KEYS[2], destination)
    end
  end
end
return removed
