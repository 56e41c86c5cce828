"""An experiment, not part of `make bench`: what a claim of one second's due resources costs
Redis per member as the schedule grows, for two layouts of the schedule.

- `zset`: today's `sh:due` (store/lua/lease_due.lua's claim without its sh:late): one
  sorted set of every watched resource, the claim a `ZRANGEBYSCORE … LIMIT` and a `ZADD XX`
  of each claimed member to its lease.
- `bucket`: a list per second of due time, the claim an `LRANGE` of the second's list and
  a `RENAME` of it to a lease list (what a design that keeps due-together members together
  would do; it is not statehook's layout).

Each size (10,000 and 1,000,000 watched, 1,000 due a second, loaded in shuffled order
beside a 460-byte string and a hash field per resource, as the growth scenario loads them)
in a database of its own on one `redis-server`; Redis's own time per claim from `INFO
commandstats` (µs of EVALSHA), median of eight seconds claimed. Run:
`python -m benchmarks.claim_layouts` (about a minute). Results: docs/performance.md,
"Cost and what is watched".
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
from pathlib import Path

import redis

from benchmarks.infra import redis_server

ZSET_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local args = {}
for i = 1, #due, 2 do
  args[#args + 1] = ARGV[2]
  args[#args + 1] = due[i]
  if #args == 1000 or i + 1 == #due then
    redis.call('ZADD', KEYS[1], 'XX', unpack(args))
    args = {}
  end
end
return due
"""
BUCKET_CLAIM = """
local out = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('RENAME', KEYS[1], KEYS[2])
return out
"""
PER_SECOND = 1000
START = 1_000


def _evalsha_seconds(r: redis.Redis) -> float:
    stats = r.info("commandstats")
    return sum(v["usec"] for k, v in stats.items() if k.startswith("cmdstat_evalsha")) / 1e6


def _load(r: redis.Redis, n: int) -> None:
    rkeys = [f"artistree:order:{i:08d}-aaaa-bbbb-cccc-dddddddddddd" for i in range(n)]
    order = list(range(n))
    random.shuffle(order)
    pipe = r.pipeline(transaction=False)
    for j, i in enumerate(order):
        due = START + i / PER_SECOND
        pipe.zadd("due", {rkeys[i]: due})
        pipe.set("snap:" + rkeys[i], os.urandom(460))
        pipe.hset("state", rkeys[i], "x" * 50)
        pipe.rpush(f"b:{int(due)}", rkeys[i])
        if j % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def measure(url: str, n: int, db: int, seconds: int = 8) -> dict[str, float]:
    """µs of Redis per claimed member, median over `seconds` claims of one second each."""
    r = redis.Redis.from_url(url, db=db)
    _load(r, n)
    zset, bucket = r.register_script(ZSET_CLAIM), r.register_script(BUCKET_CLAIM)
    zs, bs = [], []
    for k in range(seconds):
        second = START + 1 + k
        t = _evalsha_seconds(r)
        zset(keys=["due"], args=[second + 1, 10**9, 2 * PER_SECOND])
        zs.append(_evalsha_seconds(r) - t)
        t = _evalsha_seconds(r)
        bucket(keys=[f"b:{second}", f"lease:{second}"])
        bs.append(_evalsha_seconds(r) - t)
    r.close()
    return {"zset_us": statistics.median(zs) / PER_SECOND * 1e6, "bucket_us": statistics.median(bs) / PER_SECOND * 1e6}


def main() -> None:
    with tempfile.TemporaryDirectory() as work, redis_server(Path(work)) as server:
        small = measure(server.url, 10_000, 1)
        large = measure(server.url, 1_000_000, 2)
    for name, fig in (("10,000", small), ("1,000,000", large)):
        print(f"{name:>10} watched: zset claim {fig['zset_us']:.2f} µs/member, bucket claim {fig['bucket_us']:.2f}")
    print(f"growth 1,000,000 ÷ 10,000: zset {large['zset_us'] / small['zset_us']:.2f}, "
          f"bucket {large['bucket_us'] / small['bucket_us']:.2f}")


if __name__ == "__main__":
    main()
