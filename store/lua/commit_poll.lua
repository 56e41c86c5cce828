-- One resource's poll outcome, committed atomically (store/commit.py, Store.commit).
-- KEYS[1]: sh:state (HASH rkey -> state record), KEYS[2]: the resource's record (its snapshot
-- and timeline), KEYS[3]: sh:outbox, KEYS[4]: sh:due, KEYS[5]: the resource's old timeline
-- list (_record.lua), KEYS[6]: sh:epoch, KEYS[7]: sh:meta.
-- ARGV[1]: rkey, ARGV[2]: the state record the poll read ('' = none), ARGV[3]: the new record,
-- ARGV[4]: the packed snapshot, ARGV[5]: what to do with the due time ('at', 'stop', 'keep', or
-- 'soon': a scan's item that changed, due by ARGV[6] if it is also watched by id),
-- ARGV[6]: the due time (for 'at' and 'soon'), ARGV[7]: history length to keep, ARGV[8]: number of events n,
-- then n event JSONs, n history entries, and last the epoch the poll read ('*' = any).
-- Writes nothing and returns 0 when the epoch or the stored record is not the one read: the
-- records are compared whole, never read field by field.
--#include _record
local epoch = ARGV[#ARGV]
if epoch ~= '*' and redis.call('GET', KEYS[6]) ~= epoch then return 0 end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (cur or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[5] == 'stop' then
  redis.call('ZREM', KEYS[4], ARGV[1])
elseif ARGV[5] == 'at' then
  redis.call('ZADD', KEYS[4], 'XX', ARGV[6], ARGV[1])
elseif ARGV[5] == 'soon' and redis.call('HEXISTS', KEYS[7], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[4], 'LT', ARGV[6], ARGV[1])  -- back in the due set if it had finished
end
local n = tonumber(ARGV[8])
local entries = {}
for i = 1, n do
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[8 + i])
  entries[n + 1 - i] = ARGV[8 + n + i]  -- the last event is the newest
end
record_write(KEYS[2], KEYS[5], ARGV[4], entries, tonumber(ARGV[7]))
return 1
