"""A Sentinel topology of real processes (a master, a replica, three sentinels) to fail
over. See simulator/redisctl.py.
"""

from __future__ import annotations

import time
from collections import Counter
from types import TracebackType

import redis

from simulator.redis_process import HOST, MIN_DOWN_AFTER_MS, RedisProcess, SentinelProcess, wait_until

__all__ = ["SentinelTopology"]


class SentinelTopology:
    """A master, one replica of it and three sentinels (quorum 2), all on free ports.

    `url` is the statehook Sentinel URL. Starting takes well under a second (the sentinels
    are told of each other and of the replica up front). A kill -9 of the master is failed
    over in about 3.5 s with the default `down_after_ms`. After a failover the objects keep their names
    (`master` is the process started as master): ask `current_master()` who serves now.
    The old master, once restarted or resumed, is made a replica of the new one by the
    sentinels (about 10 s after it answers again; until then it is a master nobody is
    sent to)."""

    def __init__(self, *, down_after_ms: int = 1500, failover_timeout_ms: int = 10000,
                 master_name: str = "mymaster") -> None:
        self.master_name = master_name
        self.down_after_ms = max(down_after_ms, MIN_DOWN_AFTER_MS)
        self.failover_timeout_ms = failover_timeout_ms
        # a full sync starts at once, not after the default 5 s wait for more replicas
        fast_sync = ("--repl-diskless-sync-delay", "0")
        self.master = RedisProcess(appendonly=True, extra_args=fast_sync)
        self.replica = RedisProcess(appendonly=True, replicaof=(HOST, self.master.port), extra_args=fast_sync)
        self.sentinels: list[SentinelProcess] = [
            SentinelProcess(None, master_name, self.master.port, down_after_ms=self.down_after_ms,
                            failover_timeout_ms=failover_timeout_ms)
            for _ in range(3)
        ]

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.master_name}/0"

    @property
    def processes(self) -> list[RedisProcess]:
        return [self.master, self.replica]

    def start(self, timeout: float = 20.0) -> None:
        """Start everything and wait until the replica is in sync and every sentinel names
        the master, sees the replica and knows the two other sentinels (without that, a
        failover has no quorum to elect a leader)."""
        deadline = time.monotonic() + timeout
        self.master.start(timeout=timeout)
        self.replica.start(timeout=max(1.0, deadline - time.monotonic()))
        wait_until(lambda: self.replica.info("replication").get("master_link_status") == "up", deadline,
              "the replica did not sync with the master")
        for sentinel in self.sentinels:
            sentinel.write_config([self.replica.port], [o for o in self.sentinels if o is not sentinel])
            sentinel.start(timeout=max(1.0, deadline - time.monotonic()))

        def settled() -> bool:
            for sentinel in self.sentinels:
                if sentinel.master_addr() != (HOST, self.master.port):
                    return False
                info = sentinel.master_info()
                if int(info.get("num-slaves", 0)) < 1 or int(info.get("num-other-sentinels", 0)) < 2:
                    return False
            return True

        wait_until(settled, deadline, "the sentinels did not settle (master, replica, each other)")

    def master_port(self) -> int:
        """The master's port as the sentinels name it now. Right after a failover some
        sentinels still name the old one: the most named address that answers ROLE master
        wins, else the most named one."""
        named = Counter(addr[1] for addr in (s.master_addr() for s in self.sentinels) if addr is not None)
        if not named:
            raise RuntimeError("no sentinel answers")
        for port, _ in named.most_common():
            proc = self._process(port)
            if proc is not None and proc.role() == "master":
                return port
        return named.most_common(1)[0][0]

    def _process(self, port: int) -> RedisProcess | None:
        return next((p for p in self.processes if p.port == port), None)

    def current_master(self) -> RedisProcess:
        port = self.master_port()
        proc = self._process(port)
        if proc is None:
            raise RuntimeError(f"the sentinels name port {port}, which is none of this topology's servers")
        return proc

    def wait_for_failover(self, old_port: int, timeout: float = 30.0) -> int:
        """The new master's port, once a sentinel names another master than `old_port` and
        that server answers ROLE master (then up to 5 s more, within `timeout`, for a
        majority of the sentinels to name it too, so that `master_port` agrees)."""
        deadline = time.monotonic() + timeout
        while True:
            for sentinel in self.sentinels:
                addr = sentinel.master_addr()
                if addr is None or addr[1] == old_port:
                    continue
                proc = self._process(addr[1])
                if proc is not None and proc.role() == "master":
                    agreed = min(deadline, time.monotonic() + 5.0)
                    while time.monotonic() < agreed and sum(
                            1 for s in self.sentinels if s.master_addr() == addr) < len(self.sentinels) // 2 + 1:
                        time.sleep(0.05)
                    return proc.port
            if time.monotonic() > deadline:
                raise TimeoutError(f"no failover away from port {old_port} within {timeout}s")
            time.sleep(0.1)

    def set_down_after(self, ms: int) -> None:
        """`SENTINEL SET … down-after-milliseconds` on every sentinel that answers (e.g. a
        long one while a fault should not fail over)."""
        for sentinel in self.sentinels:
            client = sentinel.client()
            try:
                client.execute_command("SENTINEL", "SET", self.master_name, "down-after-milliseconds", str(ms))
            except (redis.RedisError, OSError):
                pass
            finally:
                client.close()

    def stop(self) -> None:
        """Kill everything and remove the work directories."""
        for proc in [*self.sentinels, self.replica, self.master]:
            proc.cleanup()

    def __enter__(self) -> SentinelTopology:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
