"""What a worker holds while it runs: config, Redis, the HTTP session, providers,
notifiers, the poller and the dispatcher. Built at start-up, closed at shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from arq.connections import ArqRedis

import notifiers as notifier_registry
import providers as provider_registry
from config import Config
from config.schema import WatchSpec
from notifiers.base import Notifier, NotifierContext
from providers.base import Provider
from tasks import keys
from tasks.dispatch import Dispatcher
from tasks.model import Event, ResourceRef
from tasks.poll import Poller, PollOutcome
from tasks.store import Store, WatchMeta
from worker.metrics import LatencyRecorder

__all__ = ["Runtime", "watch_rkeys"]

log = logging.getLogger("statehook.worker")


def watch_rkeys(spec: WatchSpec, provider: type[Provider]) -> list[tuple[str, WatchMeta]]:
    """The resources a watch from the config file names, with their meta."""
    meta = WatchMeta(interval=spec.interval, discovered=spec.discovered, source="config")
    if spec.scan is not None:
        # an empty scan (every order of a Rev account) still needs an id: "rev:scan:" is no rkey
        scan_id = "&".join(f"{k}={v}" for k, v in sorted(spec.scan.items())) or "all"
        meta = WatchMeta(interval=spec.interval, discovered=spec.discovered, scan=spec.scan, source="config")
        return [(ResourceRef(spec.provider, "scan", scan_id).key, meta)]
    kind = spec.kind or provider.default_kind
    return [(ResourceRef(spec.provider, kind, rid).key, meta) for rid in spec.ids]


@dataclass
class Runtime:
    config: Config
    redis: ArqRedis
    session: aiohttp.ClientSession
    providers: dict[str, Provider]
    notifiers: dict[str, Notifier]
    store: Store
    poller: Poller
    dispatcher: Dispatcher
    worker_id: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    background: list[asyncio.Task[None]] = field(default_factory=list)
    _event_counts: Counter[str] = field(default_factory=Counter)
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)

    @classmethod
    async def start(cls, config: Config, redis: ArqRedis, *, run_dispatcher: bool = True) -> Runtime:
        worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300),
            json_serialize=lambda o: __import__("orjson").dumps(o).decode(),
        )
        provs = {
            name: provider_registry.REGISTRY[name](settings, session)
            for name, settings in config.providers.items()
        }
        nctx = NotifierContext(session=session, redis=redis)
        notes = {
            name: notifier_registry.REGISTRY[settings.kind](name, settings, nctx)
            for name, settings in config.destinations.items()
        }
        notifier_registry.bind_routes(notes.values(), config.routes)  # per-route template overrides
        store = Store(redis, history_length=config.settings.worker.history_length)
        dispatcher = Dispatcher(
            redis,
            config.routes,
            worker_id,
            enabled_destinations={n for n, s in config.destinations.items() if s.enabled},
            reclaim_idle=config.settings.worker.reclaim_idle,
        )
        rt = cls(config, redis, session, provs, notes, store, Poller(store, provs), dispatcher, worker_id)
        rt.poller.on_events = rt._count_events
        for provider in provs.values():
            rt._time_fetches(provider)
        await rt.sync_watches()
        await dispatcher.ensure_group()
        if run_dispatcher:
            rt.background.append(asyncio.create_task(dispatcher.run(rt.stop), name="dispatcher"))
        rt.background.append(asyncio.create_task(rt._heartbeat(), name="heartbeat"))
        log.info("worker %s started: %d providers, %d destinations, %d routes",
                 worker_id, len(provs), len(notes), len(config.routes))
        return rt

    async def poll(self, rkeys: Sequence[str]) -> Counter[PollOutcome]:
        started = time.perf_counter()
        outcomes = await self.poller.poll(rkeys)
        elapsed = time.perf_counter() - started
        provider = ResourceRef.parse(rkeys[0]).provider if rkeys else "?"
        self.latency.observe("batch", provider, elapsed)
        counts = {f"polls:{provider}:{k.value}": v for k, v in outcomes.items()}
        counts.update(self._event_counts)
        counts.update(self.latency.drain())
        self._event_counts.clear()
        await self.store.incr_stats(counts)
        summary = " ".join(f"{k.value}={v}" for k, v in sorted(outcomes.items()))
        log.debug("poll %s: %d resources in %.0f ms: %s", provider, len(rkeys), elapsed * 1000, summary,
                  extra={"provider": provider, "outcomes": {k.value: v for k, v in outcomes.items()},
                         "duration_ms": round(elapsed * 1000, 1)})
        return outcomes

    def _time_fetches(self, provider: Provider) -> None:
        """Time every fetch of `provider` into the poll latency histogram. The recorder is
        in memory; `poll` flushes it with the batch's counters, in the same round trip.
        A provider that fetches raw bodies has `fetch_body` timed (its `fetch` calls it)."""
        attr = "fetch_body" if provider.fingerprint_blanks is not None else "fetch"
        fetch = getattr(provider, attr)
        recorder, name = self.latency, provider.name

        async def timed_fetch(ref: ResourceRef) -> Any:
            started = time.perf_counter()
            try:
                return await fetch(ref)
            finally:
                recorder.observe("poll", name, time.perf_counter() - started)

        setattr(provider, attr, timed_fetch)

    def _count_events(self, events: list[Event]) -> None:
        for event in events:
            self._event_counts[f"events:{event.provider}"] += 1
            self._event_counts[f"events_type:{event.type}"] += 1

    async def sync_watches(self) -> None:
        """Register the config file's watches; forget config watches no longer in it."""
        wanted: dict[str, WatchMeta] = {}
        for spec in self.config.watches:
            wanted.update(watch_rkeys(spec, provider_registry.REGISTRY[spec.provider]))
        current = await self.store.watches(source="config")
        stale = [k for k in current if k not in wanted]
        added = await self.store.add_watches(wanted.items())
        removed = await self.store.remove_watches(stale)
        if added or removed:
            log.info("watches from the config file: %d added, %d removed", added, removed)

    async def _heartbeat(self) -> None:
        """`sh:health:{worker_id}` = {at, interval, pid}, every `health_interval`; it expires
        by itself if the worker dies without deleting it. /healthz reads these. The same beat
        puts the worker in `sh:workers` (scored by when it runs out), whose count gives each
        worker its share of every provider's concurrency."""
        interval = self.config.settings.worker.health_interval
        lasts = interval * 2 + 1  # a beat counts until two more were missed (and a second)
        key = keys.HEALTH_PREFIX + self.worker_id
        try:
            while not self.stop.is_set():
                beat = orjson.dumps({"at": time.time(), "interval": interval, "pid": os.getpid()})
                try:
                    await self.redis.set(key, beat, px=int(lasts * 1000))
                    live = await self.poller.limits.beat(self.worker_id, lasts)
                    self.poller.share_concurrency(live)
                except Exception:
                    log.warning("heartbeat: Redis unreachable")
                try:
                    await asyncio.wait_for(self.stop.wait(), timeout=interval)
                except TimeoutError:
                    pass
        finally:
            # a graceful stop or a cancellation: this worker stops counting at once
            try:
                await asyncio.shield(self.redis.delete(key))
                await asyncio.shield(self.poller.limits.leave(self.worker_id))
            except Exception:
                log.warning("heartbeat: could not remove %s", key)

    async def close(self) -> None:
        self.stop.set()
        # let the loops see `stop` and finish their step (the heartbeat removes its key)
        _, pending = await asyncio.wait(self.background, timeout=1.0) if self.background else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        for notifier in self.notifiers.values():
            await notifier.close()
        for provider in self.providers.values():
            await provider.close()
        await self.session.close()
