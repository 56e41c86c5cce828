"""simulator/redisctl.py itself: what each fault looks like from a client's side."""

from __future__ import annotations

import time

import pytest
import redis

from simulator.redisctl import RedisProcess, SentinelTopology, port_refuses


def test_a_stopped_server_refuses_and_a_restart_keeps_the_aof() -> None:
    with RedisProcess(appendonly=True) as proc:
        client = proc.client()
        client.set("k", "v")
        proc.stop()
        assert not proc.alive()
        assert port_refuses(proc.port)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        proc.start()
        assert client.get("k") == b"v"
        proc.kill()
        proc.restart(down_for=0.1)  # a dead one is reaped and started again, on the same port
        assert client.get("k") == b"v"
        client.close()


def test_a_paused_server_accepts_but_a_command_times_out() -> None:
    with RedisProcess(appendonly=False) as proc:
        client = proc.client()
        proc.pause()
        try:
            assert not port_refuses(proc.port)
            started = time.monotonic()
            with pytest.raises(redis.TimeoutError):
                client.ping()
            assert time.monotonic() - started < 3
        finally:
            proc.resume()
        assert client.ping()
        client.close()


def test_a_sentinel_failover_after_kill_names_the_replica() -> None:
    with SentinelTopology(down_after_ms=1000, failover_timeout_ms=5000) as topo:
        assert topo.master_port() == topo.master.port
        assert topo.current_master() is topo.master
        assert topo.url.startswith("redis+sentinel://127.0.0.1:") and topo.url.endswith("/mymaster/0")
        master = topo.master.client()
        master.set("k", "v")
        # replicated: WAIT returns once the replica acknowledged (the link may still be syncing)
        assert master.wait(1, 10_000) == 1, "the replica did not acknowledge the write"
        topo.master.kill()
        assert topo.wait_for_failover(topo.master.port, timeout=20) == topo.replica.port
        assert topo.current_master() is topo.replica
        assert topo.replica.client().get("k") == b"v"
        topo.master.start()  # the old master comes back; the sentinels make it a replica
        deadline = time.monotonic() + 20
        while topo.master.role() != "slave":
            assert time.monotonic() < deadline, "the old master was not made a replica"
            time.sleep(0.2)
