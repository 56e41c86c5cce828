"""`statehook demo`: the whole service on this machine, with nothing to configure.

A private redis-server on a free port (unless STATEHOOK_REDIS_URL is set), the simulator
with every provider it knows, a webhook receiver that verifies signatures, and a worker,
all in one process. The simulator's scripted progression moves orders along; events and
deliveries are printed as they happen; the last line is the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from config import load_config
from config.toml_out import toml_value
from simulator.core import Simulator
from simulator.receivers import Received, WebhookReceiver
from simulator.registry import SIM_PROVIDERS, build_simulator
from tasks import keys
from worker.settings import make_worker

__all__ = ["run_demo"]

STEP_EVERY = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """STATEHOOK_REDIS_URL if set, else a throwaway redis-server on a free port."""
    if os.environ.get("STATEHOOK_REDIS_URL"):
        yield os.environ["STATEHOOK_REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (make demo installs it), or set STATEHOOK_REDIS_URL")
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="statehook-demo-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)




# Per simulated provider: its settings block and its watches, given the running simulator.
Setup = Callable[[Simulator], tuple[dict[str, Any], list[dict[str, Any]]]]


def _artistree(sim: Simulator) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sim["artistree"].add_many(12)
    block = {"base_url": sim.url("artistree"), "token_url": sim.url("artistree") + "/oauth2/token",
             "client_id": "sim-client", "client_secret": "sim-secret"}
    return block, [{"provider": "artistree", "scan": {"project_id": "All Projects"}, "interval": "1s",
                    "discovered": True}]


def _rev(sim: Simulator) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ids = [sim["rev"].add_order(kind="transcription" if i % 2 else "caption") for i in range(8)]
    block = {"base_url": sim.url("rev"), "client_key": "sim-client-key", "user_key": "sim-user-key"}
    return block, [{"provider": "rev", "ids": ids, "interval": "1s"}]


def _sartiq(sim: Simulator) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ids = sim["sartiq"].add_many(6)
    block = {"base_url": sim.url("sartiq"), "username": "sim@example.com", "password": "sim-password"}
    return block, [{"provider": "sartiq", "kind": "upload_task", "ids": [str(i) for i in ids], "interval": "1s"}]


def _deepomatic(sim: Simulator) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ids = sim["deepomatic"].add_many(6)
    block = {"base_url": sim.url("deepomatic"), "site": "demo", "api_key": "sim-api-key"}
    return block, [{"provider": "deepomatic", "ids": [str(i) for i in ids], "interval": "1s"}]


SETUPS: dict[str, Setup] = {"artistree": _artistree, "rev": _rev, "sartiq": _sartiq, "deepomatic": _deepomatic}


def write_demo_config(path: Path, redis_url: str, sim: Simulator, hook_url: str, secret: str) -> None:
    lines = [f"redis_url = {toml_value(redis_url)}", "", "[worker]", 'reclaim_idle = "5s"', ""]
    for name in sim.providers:
        block, watches = SETUPS[name](sim)
        lines.append(f"[providers.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in block.items()]
        lines.append("")
        for w in watches:
            lines.append("[[watches]]")
            lines += [f"{k} = {toml_value(v)}" for k, v in w.items()]
            lines.append("")
    lines += [
        "[destinations.console]", 'kind = "console"', "",
        "[destinations.receiver]", 'kind = "webhook"',
        f"url = {toml_value(hook_url)}", f"secret = {toml_value(secret)}",
        "retry_schedule = [0.5, 1, 2]", "",
        "[[routes]]", 'to = ["console", "receiver"]', "",
    ]
    path.write_text("\n".join(lines))


async def run_demo(seconds: float) -> int:
    from worker.logs import setup_logging

    setup_logging("warning", "text")
    with private_redis() as redis_url, tempfile.TemporaryDirectory(prefix="statehook-demo-") as tmp:
        names = [n for n in SIM_PROVIDERS if n in SETUPS]
        sim = build_simulator(names)
        await sim.start()
        secret = "whsec_" + __import__("base64").b64encode(secrets.token_bytes(24)).decode()

        def show(item: Received) -> None:
            print(f"    ↳ webhook {item.webhook_id} verified ({item.event['type']})", flush=True)

        receiver = WebhookReceiver(secret=secret, on_receive=show)
        await receiver.start()
        path = Path(tmp) / "statehook.toml"
        write_demo_config(path, redis_url, sim, receiver.url, secret)
        config = load_config(path)
        redis = aioredis.from_url(redis_url)
        await redis.delete(keys.STATS)
        print(f"demo: simulator {sim.base_url} ({', '.join(names)}), redis {redis_url}, receiver {receiver.url}")
        worker = make_worker(config, handle_signals=False)
        run = asyncio.create_task(worker.async_run())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        started = time.monotonic()
        try:
            while not stop.is_set() and (seconds <= 0 or time.monotonic() - started < seconds):
                await asyncio.sleep(STEP_EVERY)
                sim.step()
            # let what is in flight land before counting
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                stats = await _stats(redis)
                done = stats.get("deliveries_ok", 0) + stats.get("deliveries_dead", 0)
                if done >= 2 * sum(v for k, v in stats.items() if k.startswith("events:")):
                    break
                await asyncio.sleep(0.1)
        finally:
            await worker.close()
            with contextlib.suppress(asyncio.CancelledError):
                await run
            stats = await _stats(redis)
            await redis.aclose()
            await receiver.stop()
            await sim.stop()
        per_provider = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("events:")}
        events = sum(per_provider.values())
        breakdown = ", ".join(f"{p} {per_provider.get(p, 0)}" for p in names)
        delivered = stats.get("deliveries_ok", 0)
        failed = stats.get("deliveries_dead", 0)
        print(f"demo: {events} events ({breakdown}), {delivered} deliveries, {failed} failed", flush=True)
        return 0 if failed == 0 else 1


async def _stats(redis: aioredis.Redis) -> dict[str, int]:
    raw = await redis.hgetall(keys.STATS)  # type: ignore[misc]
    return {k.decode(): int(v) for k, v in raw.items()}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(asyncio.run(run_demo(float(sys.argv[1]) if len(sys.argv) > 1 else 0)))
