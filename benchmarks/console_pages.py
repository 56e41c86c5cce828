"""The console's server time with many watches: `python -m benchmarks.console_pages`.

A private redis-server (never 6379) is filled with WATCHES watched Artistree orders in the
stored formats (watch meta and due time through the store, a commit state and a packed
snapshot each), one of them with a full timeline (history_length events, each with its
delivery attempts) and a thousand dead letters; the API with its console is served in this
process on a free port. Each page is asked for ROUNDS times by a signed-in client, and the
figure is the server's own time, read from the Server-Timing header the console sets on
every answer (template rendering included, the network and the client not). The issue's
target: the overview and a resource page under 100 ms of server time with 100,000 watches.
A figure, not a test: it prints one line per page, then `console: …` with the medians.

    python -m benchmarks.console_pages [--watches N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from benchmarks.infra import redis_server
from benchmarks.stack import WHSEC
from config import Config, load_config
from config.toml_out import toml_table, toml_value
from core.fingerprint import canonical
from core.state import ResourceState
from model.events import Severity
from model.resources import ResourceRef
from notifiers.templates import sample_event
from providers.artistree import ArtistreeProvider
from simulator.artistree import ArtistreeSim
from store import keys, record_frame
from store.deliveries import Attempt, Deliveries, DeliveryRecords
from store.history import history_entry, pack_snapshot
from store.operational import OperationalEvents
from store.records import encode_state
from store.snapshots import Store, WatchMeta

__all__ = ["main", "measure"]

WATCHES = 100_000
ROUNDS = 40
HISTORY = 50
ATTEMPTS = 3
DEAD_LETTERS = 1000
TOKEN = "bench-console-token"
CHUNK = 5000
TARGET_MS = 100.0


def _config(path: Path, redis_url: str) -> Config:
    lines = [f"redis_url = {toml_value(redis_url)}", ""]
    lines += toml_table("providers.artistree", {"base_url": "http://127.0.0.1:9", "client_id": "bench",
                                                "client_secret": "bench-secret"})
    lines += toml_table("destinations.hook", {"kind": "webhook", "url": "http://127.0.0.1:9/hook",
                                              "secret": WHSEC})  # made per run
    lines += ['[[routes]]', 'to = ["hook"]', "", *toml_table("api", {"token": TOKEN})]
    path.write_text("\n".join(lines) + "\n")
    return load_config(path)


def _snapshot() -> tuple[dict[str, object], str]:
    """A real Artistree order as the store keeps it (normalized), and its rkey's id."""
    sim = ArtistreeSim()
    order = sim.add_order(state="In Progress", title="Poster v3")
    settings = ArtistreeProvider.settings_model.model_validate(
        {"base_url": "http://127.0.0.1:9", "client_id": "bench", "client_secret": "bench-secret"})
    spec = ArtistreeProvider.spec_type(settings)
    ref = ResourceRef("artistree", "order", str(order["order_id"]))
    return spec.normalize(ref, order), str(order["order_id"])


async def _fill(redis: aioredis.Redis, n: int) -> str:
    """`n` watched orders with state and snapshot; returns the rkey of the one with a timeline."""
    snapshot, _ = _snapshot()
    packed = pack_snapshot(canonical(snapshot))
    state = encode_state(ResourceState(digest="d" * 32, seq=HISTORY, changed_at=time.time() - 60))
    rkeys = [f"artistree:order:bench-{i:07d}" for i in range(n)]
    store = Store(redis)
    for start in range(0, n, CHUNK):
        chunk = rkeys[start:start + CHUNK]
        await store.add_watches(((r, WatchMeta(interval=60.0)) for r in chunk), due_at=time.time() + 60)
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.STATE, mapping=dict.fromkeys(chunk, state))
            pipe.mset({keys.snapshot(r): packed for r in chunk})
            await pipe.execute()
    await _timeline(redis, rkeys[n // 2])
    return rkeys[n // 2]


async def _timeline(redis: aioredis.Redis, rkey: str) -> None:
    ref = ResourceRef.parse(rkey)
    base = sample_event(Severity.CRITICAL)
    resource = {**base.resource, "key": rkey, "id": ref.id}
    deliveries = Deliveries(redis, OperationalEvents(redis, history_length=50))
    records = DeliveryRecords()
    entries: list[bytes] = []
    for seq in range(1, HISTORY + 1):
        event = replace(base, id=f"evt_bench_{seq:04d}", seq=seq, provider="artistree", resource=resource,
                        type="artistree.order.state_changed")
        entries.insert(0, history_entry(rkey, event))
        dead = seq % 10 == 0  # every tenth event's retries ran out
        for attempt in range(1, ATTEMPTS + 1):
            ok = attempt == ATTEMPTS and not dead
            records.add(event.id, Attempt("hook", attempt, base.detected_at, ok, 204 if ok else 503, 12.5,
                                          None if ok else "HTTP 503: upstream busy"), "ok" if ok else "retried", 0.01)
        if dead:
            await deliveries.dead_letter(event.to_json(), "hook", "gave up after 3 attempts: HTTP 503", 503, 3)
    await deliveries.write(records)
    snapshot = await redis.get(keys.snapshot(rkey))
    await redis.set(keys.snapshot(rkey), record_frame.join(snapshot, entries))
    for i in range(DEAD_LETTERS):
        await deliveries.dead_letter(replace(base, id=f"evt_dead_{i:05d}").to_json(), "hook", "HTTP 500", 500, 8)


async def _signed_in(http: aiohttp.ClientSession) -> None:
    async with http.get("/ui/login") as resp:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert csrf, "no sign-in form"
    async with http.post("/ui/login", data={"csrf": csrf.group(1), "token": TOKEN, "next": "/ui/"},
                         allow_redirects=False) as resp:
        assert resp.status == 303, f"sign-in answered {resp.status}"


async def _server_ms(http: aiohttp.ClientSession, path: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        async with http.get(path) as resp:
            await resp.read()
            assert resp.status == 200, f"{path}: {resp.status}"
            found = re.search(r"dur=([0-9.]+)", resp.headers.get("Server-Timing", ""))
            assert found, f"{path}: no Server-Timing"
            times.append(float(found.group(1)))
    return times


async def measure(watches: int = WATCHES, rounds: int = ROUNDS) -> dict[str, list[float]]:
    """Server milliseconds per page, `rounds` each."""
    from worker.api import start_api

    with tempfile.TemporaryDirectory(prefix="statehook-console-bench-") as tmp, redis_server(Path(tmp)) as server:
        redis = aioredis.from_url(server.url)
        started = time.perf_counter()
        rkey = await _fill(redis, watches)
        print(f"loaded {watches:,} watches in {time.perf_counter() - started:.1f} s "
              f"({await redis.dbsize():,} keys)", flush=True)
        runner, url = await start_api(_config(Path(tmp) / "statehook.toml", server.url), host="127.0.0.1", port=0)
        pages = {"overview": "/ui/", "resource": f"/ui/resource?rkey={rkey}", "watches": "/ui/watches",
                 "watch search": "/ui/watches?q=bench-00999", "dead letters": "/ui/dead-letters",
                 "events": "/ui/events", "destinations": "/ui/destinations"}
        try:
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(base_url=url, cookie_jar=jar) as http:
                await _signed_in(http)
                for path in pages.values():  # the first answer of each page compiles its template
                    await _server_ms(http, path, 1)
                return {name: await _server_ms(http, path, rounds) for name, path in pages.items()}
        finally:
            await runner.cleanup()
            await redis.aclose()


def _line(name: str, ms: list[float]) -> str:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{name:<14} median {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms  max {ordered[-1]:6.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watches", type=int, default=WATCHES)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.watches, args.rounds))
    for name, ms in figures.items():
        print(_line(name, ms))
    overview, resource = statistics.median(figures["overview"]), statistics.median(figures["resource"])
    verdict = "under" if max(overview, resource) < TARGET_MS else "OVER"
    print(f"console: watches={args.watches} overview_ms={overview:.1f} resource_ms={resource:.1f} "
          f"({verdict} the {TARGET_MS:g} ms target, server time, median of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
