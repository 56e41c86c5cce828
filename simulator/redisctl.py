"""Real Redis processes to break on purpose: start, stop (port refused), kill -9, SIGSTOP
(port accepts, nothing answers), restart on the same port with the AOF kept, and a
Sentinel topology (a master, a replica, three sentinels) to fail over.

Synchronous and subprocess-based, so that a pytest test and a script (`python -m chaos`)
use it alike; from async code call the blocking methods through `asyncio.to_thread`.
Every process binds 127.0.0.1 on a free port (never 6379) and keeps its files in a
directory of its own. The binary is Debian's `redis-server` (sentinel mode is
`redis-server sentinel.conf --sentinel`).

The processes are simulator/redis_process.py, the topology simulator/redis_sentinel.py;
import them from here.
"""

from __future__ import annotations

from simulator.redis_process import RedisProcess, SentinelProcess, free_port, port_refuses, redis_binary
from simulator.redis_sentinel import SentinelTopology

__all__ = ["RedisProcess", "SentinelProcess", "SentinelTopology", "free_port", "port_refuses", "redis_binary"]
