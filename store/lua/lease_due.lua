-- The scheduler's claim (Store.claim_due_times): what is due by ARGV[1] moves to its lease.
-- KEYS[1]: sh:due (ZSET rkey -> due time), KEYS[2]: sh:late (ZSET rkey -> the due time of its
-- first claim, until a poll of it removes it: what the overdue check reads).
-- ARGV[1]: until, ARGV[2]: lease until, ARGV[3]: limit.
-- Returns rkey, due time, rkey, due time, ... in due order. The lease is set by one ZADD per
-- 500 members (Lua's unpack has a stack limit): a ZADD per member cost Redis ~5 µs a poll.
-- A claim again (a lost poll job's lease ran out) keeps the first due time in sh:late (NX).
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local args, late = {}, {}
for i = 1, #due, 2 do
  args[#args + 1] = ARGV[2]
  args[#args + 1] = due[i]
  late[#late + 1] = due[i + 1]
  late[#late + 1] = due[i]
  if #args == 1000 or i + 1 == #due then
    redis.call('ZADD', KEYS[1], 'XX', unpack(args))
    redis.call('ZADD', KEYS[2], 'NX', unpack(late))
    args, late = {}, {}
  end
end
return due
