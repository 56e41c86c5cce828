-- What ARQ 0.28's ArqRedis.enqueue_job writes, for many jobs in one script (worker/queue.py).
-- KEYS[1]: the queue (a ZSET of job id -> score in ms).
-- ARGV[1]: ARQ's job key prefix, ARGV[2]: its result key prefix, then per job four values:
-- job id, score (ms), the job key's time to live (ms), the serialized job.
-- A job id that has a job or a result is refused, as enqueue_job refuses it. Returns how many were added.
local added = 0
for i = 3, #ARGV, 4 do
  local id = ARGV[i]
  local job_key = ARGV[1] .. id
  if redis.call('EXISTS', job_key, ARGV[2] .. id) == 0 then
    redis.call('PSETEX', job_key, ARGV[i + 2], ARGV[i + 3])
    redis.call('ZADD', KEYS[1], ARGV[i + 1], id)
    added = added + 1
  end
end
return added
