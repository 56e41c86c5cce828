"""The faults, one function each. Every one returns a `FaultRecord` with the moment it
started and, for a Redis fault, the moment Redis answered again (`redis_back`).

Blocking process control (simulator/redisctl.py) runs in a thread, so that the simulator
and the receivers, in this process's event loop, keep answering during a fault.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING

import redis

from chaos.fleet import StatehookProc, pids_of_ports
from chaos.score import FaultRecord
from simulator.core import Fault
from simulator.redisctl import RedisProcess, SentinelTopology, port_refuses
from store import keys

if TYPE_CHECKING:
    from chaos.run import Run

__all__ = [
    "flushall",
    "redis_down",
    "redis_kill9_aof_restart",
    "redis_sigstop",
    "sentinel_failover",
    "worker_kill_deliveries",
    "worker_kill_dispatcher",
    "worker_kill_polls",
]

CATCH_TIMEOUT = 10.0
"""How long to wait for a worker to be caught with polls or deliveries in flight."""


async def _catch(run: Run, in_flight: Mapping[int, object]) -> tuple[StatehookProc | None, int]:
    """The live worker with the most requests in flight in `in_flight` (client port → …),
    waiting up to CATCH_TIMEOUT for one; (None, 0) if none was caught."""
    deadline = time.monotonic() + CATCH_TIMEOUT
    while time.monotonic() < deadline:
        workers = {w.pid: w for w in run.fleet.workers()}
        owners = Counter(pids_of_ports(list(in_flight), workers).values())
        if owners:
            pid, count = owners.most_common(1)[0]
            return workers[pid], count
        await asyncio.sleep(0.05)
    return None, 0


async def _kill_and_replace(run: Run, name: str, victim: StatehookProc | None, why: str) -> FaultRecord:
    """kill -9 of `victim` (or of the first live worker) and a new worker in its place. The
    stream's window for the fault is opened by the caller, when the fault's set-up began."""
    if victim is None:
        live = run.fleet.workers()
        if not live:
            run.log(f"{name}: no worker alive to kill: skipped")
            return FaultRecord(name, "worker", time.time(), note="skipped: no worker alive")
        victim, why = live[0], why + " (none caught: the first live worker)"
    started = time.time()
    run.fleet.kill(victim)
    replacement = run.fleet.spawn_worker(run.stage)
    run.log(f"{name}: kill -9 {victim.name} (pid {victim.pid}, {why}); new worker {replacement.name}")
    return FaultRecord(name, "worker", started, victim=victim.name, note=why)


async def worker_kill_polls(run: Run) -> FaultRecord:
    """kill -9 of the worker with the most provider requests in flight. The providers answer
    2.5 s late meanwhile, so that polls are in flight to be caught (a slow provider)."""
    run.stream.open_window("worker-kill-polls")
    for provider in run.sim.providers:
        run.sim.faults.add(provider, "/", Fault(delay=2.5))
    try:
        victim, count = await _catch(run, run.sim.in_flight)
        record = await _kill_and_replace(run, "worker-kill-polls", victim, f"{count} poll requests in flight")
    finally:
        run.sim.faults.clear()
    return record


async def worker_kill_deliveries(run: Run) -> FaultRecord:
    """kill -9 of the worker with the most webhook deliveries in flight (the receiver holds
    its answers 3 s meanwhile)."""
    run.stream.open_window("worker-kill-deliveries")
    run.hook.hold_s = 3.0
    try:
        victim, count = await _catch(run, run.hook.in_flight)
        record = await _kill_and_replace(run, "worker-kill-deliveries", victim, f"{count} deliveries in flight")
    finally:
        run.hook.hold_s = 0.0
    return record


def _pid_of_consumer(name: str) -> int | None:
    """A dispatcher's consumer name is `{hostname}-{pid}-{hex}` (worker/runtime.py)."""
    parts = name.rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def _dispatchers(client: redis.Redis) -> tuple[dict[int, int], dict[int, int]]:
    """pid -> pending outbox entries, pid -> idle ms, from the outbox group's consumers."""
    pending: dict[int, int] = {}
    idle: dict[int, int] = {}
    try:
        consumers = client.xinfo_consumers(keys.OUTBOX, keys.GROUP)
    except redis.RedisError:
        return pending, idle
    for c in consumers:  # type: ignore[union-attr]
        name = c["name"].decode() if isinstance(c["name"], bytes) else str(c["name"])
        pid = _pid_of_consumer(name)
        if pid is not None:
            pending[pid] = int(c.get("pending", 0))
            idle[pid] = int(c.get("idle", 0))
    return pending, idle


async def worker_kill_dispatcher(run: Run) -> FaultRecord:
    """kill -9 of the worker whose dispatcher holds the most pending outbox entries (read,
    not acknowledged), else of the one that read the outbox last. Deliveries are held 2 s
    meanwhile so that entries stay pending where a dispatcher acknowledges them late."""
    run.stream.open_window("worker-kill-dispatcher")
    run.hook.hold_s = 2.0
    try:
        deadline = time.monotonic() + CATCH_TIMEOUT
        victim: StatehookProc | None = None
        why = ""
        while time.monotonic() < deadline and victim is None:
            workers = {w.pid: w for w in run.fleet.workers()}
            client = run.redis_client()
            try:
                pending, idle = await asyncio.to_thread(_dispatchers, client)
            finally:
                client.close()
            held = {pid: n for pid, n in pending.items() if pid in workers and n > 0}
            if held:
                pid = max(held, key=lambda p: held[p])
                victim, why = workers[pid], f"its dispatcher holds {held[pid]} pending outbox entries"
            elif time.monotonic() > deadline - CATCH_TIMEOUT / 2:
                recent = {pid: ms for pid, ms in idle.items() if pid in workers}
                if recent:
                    pid = min(recent, key=lambda p: recent[p])
                    victim, why = workers[pid], f"no entry pending anywhere; its dispatcher read {recent[pid]} ms ago"
            await asyncio.sleep(0.1)
        return await _kill_and_replace(run, "worker-kill-dispatcher", victim, why or "dispatcher")
    finally:
        run.hook.hold_s = 0.0


async def _redis_fault(run: Run, name: str, action: str, down: Awaitable[None]) -> FaultRecord:
    started = time.time()
    window = run.stream.open_window(name, started)
    run.log(f"{name}: {action}")
    try:
        await down
    finally:
        back = time.time()
        run.stream.close_window(window, back)
    run.stream.probe()
    run.log(f"{name}: Redis answers again after {back - started:.1f}s")
    return FaultRecord(name, "redis", started, redis_back=back)


def _plain(run: Run) -> RedisProcess:
    assert isinstance(run.redis, RedisProcess)
    return run.redis


async def redis_kill9_aof_restart(run: Run, down_for: float) -> FaultRecord:
    proc = _plain(run)

    async def down() -> None:
        await asyncio.to_thread(proc.kill)
        await asyncio.sleep(down_for)
        await asyncio.to_thread(proc.start, 30.0)

    return await _redis_fault(run, "redis-kill9-aof", f"kill -9 of redis-server, restarted from its AOF after "
                              f"{down_for:g}s", down())


async def redis_down(run: Run, seconds: float) -> FaultRecord:
    proc = _plain(run)

    async def down() -> None:
        await asyncio.to_thread(proc.stop)
        if not port_refuses(proc.port):
            run.log("redis-down: the port still accepts connections (unexpected)")
        await asyncio.sleep(seconds)
        await asyncio.to_thread(proc.start, 30.0)

    return await _redis_fault(run, f"redis-down-{seconds:g}s", f"redis-server stopped (port refused) for "
                              f"{seconds:g}s", down())


async def redis_sigstop(run: Run, seconds: float) -> FaultRecord:
    proc = _plain(run)

    async def down() -> None:
        proc.pause()
        try:
            await asyncio.sleep(seconds)
        finally:
            proc.resume()

    return await _redis_fault(run, f"redis-sigstop-{seconds:g}s", f"SIGSTOP of redis-server for {seconds:g}s (hung)",
                              down())


async def flushall(run: Run, quiet: float, window_s: float, flips: int) -> FaultRecord:
    """FLUSHALL after `quiet` seconds without changes (so that everything made before it can
    be delivered before the data goes); then `flips` resources changed and changed back
    within half a second (made and reverted while Redis had lost its data)."""
    run.stream.paused = True
    run.log(f"flushall: no changes for {quiet:g}s first")
    await asyncio.sleep(quiet)
    client = run.redis_client()
    try:
        await asyncio.to_thread(client.flushall)
    finally:
        client.close()
    started = time.time()
    run.stream.phase = "flushall"
    run.stream.open_window("flushall", started)
    run.stream.close_window(run.stream.windows[-1], started + window_s)
    flipped = run.stream.flips(flips, revert_after=0.5)
    run.stream.probe()
    run.stream.paused = False
    run.log(f"flushall: Redis emptied; {flips} resources flipped and reverted in 0.5s")
    await asyncio.sleep(0.5)
    for target, state in flipped:
        run.stream.change(target, state)
    return FaultRecord("flushall", "redis", started, redis_back=started, data_loss=True,
                       note=f"{flips} flips made and reverted in 0.5 s")


async def sentinel_failover(run: Run, timeout: float = 30.0) -> FaultRecord:
    """kill -9 of the master; Redis is back when a sentinel names the replica and it answers
    ROLE master. The old master is started again 10 s later (the sentinels demote it)."""
    topo = run.redis
    assert isinstance(topo, SentinelTopology)
    old_port = await asyncio.to_thread(topo.master_port)
    old = topo.current_master()

    async def down() -> None:
        await asyncio.to_thread(old.kill)
        await asyncio.to_thread(topo.wait_for_failover, old_port, timeout)

    record = await _redis_fault(run, "sentinel-failover", f"kill -9 of the master (port {old_port})", down())

    async def bring_back() -> None:
        await asyncio.sleep(10)
        try:
            await asyncio.to_thread(old.start, 30.0)
            run.log("sentinel-failover: the old master is running again (to be demoted by the sentinels)")
        except RuntimeError as exc:
            run.log(f"sentinel-failover: the old master did not start again: {exc}")

    run.background(bring_back())
    return record
