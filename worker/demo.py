"""`statehook demo`: the whole service on this machine, with nothing to configure.

A private redis-server on a free port (unless STATEHOOK_REDIS_URL is set), the simulator
with every provider it knows, a webhook receiver that verifies signatures, and a worker,
all in one process. The simulator's scripted progression moves orders along; events and
deliveries are printed as they happen; the last line is the summary. Every watch has a
short stall time (an order left in one state for `DEMO_STALL` is stalled), and for a few
seconds Deepomatic refuses statehook's key (`statehook.provider.unhealthy`, then
`.recovered`): the demo shows statehook's own events beside the providers'.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from config import Config, load_config
from config.toml_out import toml_array, toml_table, toml_value
from simulator.core import Fault, Simulator
from simulator.receivers import Received, WebhookReceiver
from simulator.registry import SIM_PROVIDERS, build_simulator
from simulator.setups import ProviderSetup, provider_setups, providers_toml
from store import keys
from store.reads import Reads
from store.stats import Stats, parse_stats
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


# orders seeded per stand-in; Artistree's are found by a scan of the organization, the
# others are watched by id
SEEDED = {"artistree": 12, "rev": 8, "sartiq": 6, "deepomatic": 6}
SCANS: dict[str, dict[str, Any]] = {"artistree": {"scan": {"project_id": "All Projects"}, "discovered": True}}
DEMO_STALL = "8s"
"""a resource in one state this long is stalled (hours or days in production)"""
OUTAGE = ("deepomatic", 4, 8)
"""this stand-in refuses statehook's credentials from this step of the progression to this one"""


def _watch(setup: ProviderSetup) -> dict[str, Any]:
    watch = setup.watch("1s")
    watch["stall_after"] = DEMO_STALL
    if setup.name in SCANS:
        del watch["ids"]
        watch.update(SCANS[setup.name])
    return watch


def write_demo_config(path: Path, redis_url: str, sim: Simulator, hook_url: str, secret: str) -> None:
    """The demo's config, its secrets in the file (a temporary one, read by this process only)."""
    setups = provider_setups(sim)
    lines = [f"redis_url = {toml_value(redis_url)}", "", *toml_table("worker", {"reclaim_idle": "5s"})]
    lines += providers_toml(setups, [_watch(s) for s in setups], with_secrets=True)
    lines += toml_table("destinations.console", {"kind": "console"})
    lines += toml_table("destinations.receiver", {"kind": "webhook", "url": hook_url, "secret": secret,
                                                  "retry_schedule": [0.5, 1, 2]})
    lines += toml_array("routes", [{"to": ["console", "receiver"]}])
    lines += toml_table("api", {"token": f"demo-{secrets.token_urlsafe(12)}"})  # the console's sign-in
    path.touch(mode=0o600)
    path.write_text("\n".join(lines))


DEMO_API_PORT = 8080


async def serve_console(config: Config) -> web.AppRunner:
    """The API and its console on 127.0.0.1:8080 (a free port when that one is taken); prints
    where, and the demo's token to sign in with (a throwaway, made for this run)."""
    from worker.api import start_api

    try:
        runner, url = await start_api(config, host="127.0.0.1", port=DEMO_API_PORT)
    except OSError:
        runner, url = await start_api(config, host="127.0.0.1", port=0)
    token = config.settings.api.token.get_secret_value() if config.settings.api.token else ""
    print(f"demo: console {url}/ui/ (sign in with the token {token}), API {url}", flush=True)
    return runner


async def refuse_statehook_data(redis_url: str) -> None:
    """Exits when the Redis holds statehook data: the demo writes watches, events and stats."""
    redis = aioredis.from_url(redis_url)
    try:
        used = await redis.exists(keys.EPOCH, keys.META, keys.STATS, keys.OUTBOX)
    finally:
        await redis.aclose()
    if used:
        raise SystemExit("demo: that Redis holds statehook data already (sh:epoch, sh:meta, sh:stats or "
                         "sh:outbox): the demo writes watches, events and stats of its own; point "
                         "STATEHOOK_REDIS_URL at an empty database, or unset it for a private redis-server")


async def run_demo(seconds: float) -> int:
    from worker.logs import setup_logging

    setup_logging("warning", "text")
    with private_redis() as redis_url, tempfile.TemporaryDirectory(prefix="statehook-demo-") as tmp:
        await refuse_statehook_data(redis_url)
        names = list(SIM_PROVIDERS)
        sim = build_simulator(names)
        for name in names:
            sim[name].add_many(SEEDED.get(name, 6))
        if "artistree" in sim.providers:  # an order nobody moves: stalled once DEMO_STALL has passed
            held = sim["artistree"].add_order(title="Waiting Room Poster v1")["order_id"]
            sim["artistree"].hold(held)
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
        print(f"demo: simulator {sim.base_url} ({', '.join(names)}), redis {redis_url}, receiver {receiver.url}")
        worker = make_worker(config, handle_signals=False)
        run = asyncio.create_task(worker.async_run())
        console = await serve_console(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        started, steps = time.monotonic(), 0
        try:
            while not stop.is_set() and (seconds <= 0 or time.monotonic() - started < seconds):
                await asyncio.sleep(STEP_EVERY)
                sim.step()
                steps += 1
                _outage(sim, steps)
            await _settle(redis)
        finally:
            await console.cleanup()
            await worker.close()
            with contextlib.suppress(asyncio.CancelledError):
                await run
            stats = await _stats(redis)
            await redis.aclose()
            await receiver.stop()
            await sim.stop()
        breakdown = ", ".join(f"{p} {stats.events_by_provider.get(p, 0)}" for p in [*names, "statehook"])
        stalled = sum(n for t, n in stats.events_by_type.items() if t.endswith(".stalled"))
        delivered = stats.deliveries.get("ok", 0)
        failed = stats.deliveries.get("dead", 0)
        print(f"demo: {stats.events} events ({breakdown}; {stalled} stalled), {delivered} deliveries, "
              f"{failed} failed", flush=True)
        return 0 if failed == 0 else 1


def _outage(sim: Simulator, step: int) -> None:
    """Deepomatic refuses statehook's key for a few steps (OUTAGE), then takes it again."""
    name, begins, ends = OUTAGE
    if name not in sim.providers:
        return
    if step == begins:
        sim.faults.add(name, "/", Fault(status=401))
        print(f"demo: {name} refuses statehook's credentials for {ends - begins} s", flush=True)
    elif step == ends:
        sim.faults.clear(name)
        print(f"demo: {name} takes them again", flush=True)


async def _settle(redis: aioredis.Redis, timeout: float = 10.0) -> None:
    """Let what is in flight land before counting: every event delivered to both destinations."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = await _stats(redis)
        if stats.deliveries.get("ok", 0) + stats.deliveries.get("dead", 0) >= 2 * stats.events:
            return
        await asyncio.sleep(0.1)


async def _stats(redis: aioredis.Redis) -> Stats:
    return parse_stats(await Reads(redis).stats())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(asyncio.run(run_demo(float(sys.argv[1]) if len(sys.argv) > 1 else 0)))
