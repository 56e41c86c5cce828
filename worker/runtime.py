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
from arq.connections import ArqRedis

import notifiers as notifier_registry
import providers as provider_registry
from config import Config
from config.schema import WatchSpec
from model.events import Event
from model.resources import ResourceRef
from notifiers.base import Notifier, NotifierContext
from providers.base import Provider
from store.config_watches import ConfigWatches
from store.operational import OperationalEvents
from store.rates import RateSchedule
from store.registry import WorkerRegistry
from store.slack import SlackThreads
from store.snapshots import Store, WatchMeta
from store.stats import StatsRecorder
from tasks.dispatch import Dispatcher
from tasks.poll import Poller, PollOutcome
from worker.claims_in_doubt import ClaimsInDoubt
from worker.fair_pickup import poll_room
from worker.outage import Outage, is_redis_down
from worker.queue import dispatcher_for

__all__ = ["Runtime", "watch_rkeys"]

log = logging.getLogger("statehook.worker")

RATE_HORIZON = 10.0
"""The most seconds a poll batch waits for its provider's rate slots (and half its job's
timeout at most): a batch waiting holds one of the worker's `max_jobs`, and a provider whose
budget is spent for minutes ahead would otherwise hold them all, a scan's job waiting behind."""


def watch_rkeys(spec: WatchSpec, provider: type[Provider]) -> list[tuple[str, WatchMeta]]:
    """The resources a watch from the config file names, with their meta."""
    meta = WatchMeta(interval=spec.interval, discovered=spec.discovered, source="config",
                     stall_after=spec.stall_after)
    if spec.scan is not None:
        # an empty scan (every order of a Rev account) still needs an id: "rev:scan:" is no rkey
        scan_id = "&".join(f"{k}={v}" for k, v in sorted(spec.scan.items())) or "all"
        meta = WatchMeta(interval=spec.interval, discovered=spec.discovered, scan=spec.scan, source="config",
                         stall_after=spec.stall_after)
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
    outage: Outage = field(default_factory=Outage)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    background: list[asyncio.Task[None]] = field(default_factory=list)
    _beat_now: asyncio.Event = field(default_factory=asyncio.Event)
    _recovering: asyncio.Lock = field(default_factory=asyncio.Lock)
    epoch: str | None = None
    """the dataset this worker joined (`Store.ensure_epoch`)"""
    recorder: StatsRecorder = field(default_factory=StatsRecorder)
    live_workers: int = 1
    """how many workers the last heartbeat counted (each takes its share of the providers' concurrency)"""
    claims: ClaimsInDoubt = field(init=False)
    """this process's scheduler claims whose answer Redis lost (worker/claims_in_doubt.py)"""

    def __post_init__(self) -> None:
        self.claims = ClaimsInDoubt(self.store)

    @classmethod
    async def start(cls, config: Config, redis: ArqRedis, *, run_dispatcher: bool = True,
                    outage: Outage | None = None) -> Runtime:
        """Build the runtime and take its place in the dataset (waiting while Redis is down)."""
        worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300),
            json_serialize=lambda o: __import__("orjson").dumps(o).decode(),
        )
        provs = {
            name: provider_registry.REGISTRY[name](settings, session)
            for name, settings in config.providers.items()
        }
        nctx = NotifierContext(session, RateSchedule(redis), SlackThreads(redis))
        notes = {
            name: notifier_registry.REGISTRY[settings.kind](name, settings, nctx)
            for name, settings in config.destinations.items()
        }
        notifier_registry.bind_routes(notes.values(), config.routes)  # per-route template overrides
        store = Store(redis, history_length=config.settings.worker.history_length)
        dispatcher = dispatcher_for(
            redis,
            config.routes,
            worker_id,
            enabled_destinations={n for n, s in config.destinations.items() if s.enabled},
            reclaim_idle=config.settings.worker.reclaim_idle,
            outage=outage,
            time_intervals=config.settings.time_intervals,
            history_length=config.settings.worker.history_length,
        )
        tuning = config.settings.worker
        poller = Poller(store, provs, watchdog=config.settings.watchdog, scan_lease=tuning.poll_lease,
                        rate_horizon=min(tuning.job_timeout / 2, RATE_HORIZON),
                        operational=OperationalEvents(redis, history_length=tuning.history_length))
        rt = cls(config, redis, session, provs, notes, store, poller, dispatcher, worker_id,
                 outage=outage or Outage())
        rt.poller.on_events = rt._count_events
        for provider in provs.values():
            rt._time_fetches(provider)
        try:
            await rt.outage.through(rt.join_dataset, "start-up")
        except BaseException:
            await rt.close()
            raise
        rt.outage.on_recover(rt._after_outage)
        if run_dispatcher:
            rt.background.append(asyncio.create_task(dispatcher.run(rt.stop), name="dispatcher"))
        rt.background.append(asyncio.create_task(rt._heartbeat(), name="heartbeat"))
        log.info("worker %s started: %d providers, %d destinations, %d routes",
                 worker_id, len(provs), len(notes), len(config.routes))
        return rt

    def poll_room(self, provider: str) -> int:
        """The poll batches of `provider` this worker holds at a time (worker/queue.py
        `poll_room`): its share of the provider's concurrency over the batch size, and one more;
        a worker alone takes as many as ARQ lets it (`max_jobs`): there is nobody to leave
        them to, and many in flight use its CPU best."""
        tuning = self.config.settings.worker
        prov = self.providers.get(provider)
        if self.live_workers <= 1 or prov is None:  # unknown: its jobs fail at once, as before
            return tuning.max_jobs
        return poll_room(prov.settings.max_concurrency // self.live_workers, tuning.poll_batch_size)

    async def poll(self, rkeys: Sequence[str]) -> Counter[PollOutcome]:
        started = time.perf_counter()
        outcomes = await self.poller.poll(rkeys)
        elapsed = time.perf_counter() - started
        provider = ResourceRef.parse(rkeys[0]).provider if rkeys else "?"
        self.recorder.observe("batch", provider, elapsed)
        for outcome, n in outcomes.items():
            self.recorder.poll(provider, outcome.value, n)
        await self.store.incr_stats(self.recorder.drain())
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
        recorder, name = self.recorder, provider.name

        async def timed_fetch(ref: ResourceRef) -> Any:
            started = time.perf_counter()
            try:
                return await fetch(ref)
            finally:
                recorder.observe("poll", name, time.perf_counter() - started)

        setattr(provider, attr, timed_fetch)

    def _count_events(self, events: list[Event]) -> None:
        for event in events:
            self.recorder.event(event.provider, event.type)

    async def sync_watches(self) -> None:
        """Register the config file's watches; forget config watches no longer in it."""
        wanted: dict[str, WatchMeta] = {}
        for spec in self.config.watches:
            wanted.update(watch_rkeys(spec, provider_registry.REGISTRY[spec.provider]))
        added, removed = await ConfigWatches(self.store).sync(wanted)
        if added or removed:
            log.info("watches from the config file: %d added, %d removed", added, removed)

    def outage_of(self, exc: BaseException, where: str) -> bool:
        """Whether `exc` is Redis being down (then the outage is told of it)."""
        if is_redis_down(exc):
            self.outage.failed(exc, where)
            return True
        return False

    async def join_dataset(self) -> None:
        """The worker's start in Redis: the dataset's epoch (made if Redis holds none), the
        config file's watches, the outbox's consumer group; a warning if Redis keeps nothing
        across a restart."""
        self.epoch, made = await self.store.ensure_epoch()
        if made:
            log.info("a new dataset: this Redis held no statehook data")
        await self.sync_watches()
        await self.dispatcher.ensure_group()
        warning = await _persistence_warning(self.redis)
        if warning:
            log.warning("%s", warning)

    async def check_dataset(self) -> bool:
        """Whether Redis still holds the dataset this worker joined. When it lost its data
        (a restart without persistence, a FLUSHALL, a failover to an empty replica), its
        epoch is gone or new, and the dataset is taken again at once: an epoch (so no event
        id is ever used twice), the config file's watches registered again (their first polls
        are baselines: no false events), the consumer group made again. Returns False when it
        had to."""
        if await self.store.epoch() == self.epoch:
            return True
        async with self._recovering:
            current = await self.store.epoch()
            if current == self.epoch:
                return True
            epoch, _ = await self.store.ensure_epoch()
            await self.sync_watches()
            await self.dispatcher.ensure_group()
            self.epoch = epoch  # only now: a re-registration that failed is made again at the next check
            log.error("Redis lost statehook's data: watches from the config file registered again, their "
                      "baselines are taken again; watches added through the API are gone (docs/reliability.md)")
            self._beat_now.set()
        return False

    async def _after_outage(self) -> None:
        """Right after Redis answers again: a heartbeat (so /healthz and the other workers see
        this one at once, on the master that now serves), a look at the dataset, and the
        claims that the outage left in doubt due again."""
        self._beat_now.set()
        try:
            await self.check_dataset()
            await self.claims.release(time.time())
        except Exception as exc:
            if not is_redis_down(exc):
                log.exception("checking the dataset after an outage failed")

    async def _heartbeat(self) -> None:
        """A beat in the worker registry (store/registry.py) every `health_interval`: /healthz,
        the metrics and `statehook healthcheck` read it, and the count of live workers gives
        each its share of every provider's concurrency. A worker that dies without leaving
        stops counting when its beat runs out."""
        interval = self.config.settings.worker.health_interval
        registry = WorkerRegistry(self.redis)
        try:
            while not self.stop.is_set():
                self._beat_now.clear()
                try:
                    live = await registry.beat(self.worker_id, interval, pid=os.getpid())
                    self.outage.ok()  # the beat is a write: Redis takes writes again
                    self.live_workers = live
                    self.poller.share_concurrency(live)
                    await self.check_dataset()
                except Exception as exc:
                    if is_redis_down(exc):
                        self.outage.failed(exc, "heartbeat")
                    else:
                        log.exception("heartbeat failed")
                await _first_of(self.stop, self._beat_now, timeout=interval)
        finally:
            # a graceful stop or a cancellation: this worker stops counting at once
            try:
                await asyncio.wait_for(asyncio.shield(registry.leave(self.worker_id)), 2.0)
            except Exception:
                log.warning("heartbeat: could not leave the worker registry (the beat runs out by itself)")

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


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    """Until one of `events` is set, or `timeout` passed."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def _persistence_warning(redis: ArqRedis) -> str | None:
    """worker/persistence.py's probe (CONFIG GET appendonly), when this build has it."""
    try:
        from worker.persistence import persistence_warning
    except ImportError:
        return None
    try:
        return await persistence_warning(redis)
    except Exception as exc:
        if is_redis_down(exc):
            raise
        return None
