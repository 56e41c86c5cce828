"""One poll batch: read, fetch, decide, commit. The thin I/O around the pure decision.

A batch holds resources of one provider. Its records are read in one round trip
(`Store.load`), the resources fetched concurrently (under the provider's limits), the
snapshots stored before read for those whose digest changed, and each resource's
outcome decided by `core.decide.decide` with no I/O. What the decisions say to write
(states, snapshots, events, due times, error counters, provider health) is committed in
one round trip. A scan does the same page by page, the listing compared in Redis first,
and at a full sweep's end confirms what it no longer lists (tasks/scan_sweep.py). What the
batch saw of its provider's health goes to the watchdog (tasks/watchdog.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from config.schema import WatchdogSettings
from core.decide import Batch, Fetched, Observed, Parsed, Watch, decide, needs_old_snapshot, observe, unchanged_body
from core.fingerprint import body_fingerprint, canonical, digest, fingerprint
from core.state import ResourceState
from model.errors import MalformedPayload, ProviderError
from model.events import Event
from model.resources import ListedItems, ResourceRef, ScanItem, ScanPage
from providers.base import Provider
from store.operational import OperationalEvents
from store.rates import ProviderLimits
from store.snapshots import Store, WatchMeta
from tasks.overlap import Overlap
from tasks.paced_pages import paced
from tasks.poll_plan import Plan, PollOutcome, ScanWrites, Seen, UnhealthyLog
from tasks.rate_slots import place, usable
from tasks.read_ahead import read_ahead
from tasks.scan_sweep import unlisted
from tasks.watchdog import ProviderWatch

__all__ = ["PollOutcome", "Poller"]

log = logging.getLogger("statehook.poll")


def _watch(meta: WatchMeta, failures: int = 0, *, scheduled: bool = True, scan: str = "") -> Watch:
    return Watch(meta.interval, meta.discovered, scheduled, failures, meta.stall_after, scan)


class Poller:
    def __init__(
        self,
        store: Store,
        providers: dict[str, Provider],
        *,
        on_events: Callable[[list[Event]], None] | None = None,
        limits: ProviderLimits | None = None,
        watchdog: WatchdogSettings | None = None,
        operational: OperationalEvents | None = None,
        scan_lease: float = 60.0,
        rate_horizon: float = math.inf,
    ) -> None:
        self.store = store
        self.scan_lease = scan_lease  # the scheduler's poll_lease: a sweep renews it while it runs (ScanWrites)
        self.rate_horizon = rate_horizon
        """how far ahead a batch waits for its provider's rate slots (within its job's timeout); a
        resource whose slot is further off keeps it, booked, and is due at it (tasks/rate_slots.py)"""
        self.providers = providers
        self.on_events = on_events
        self.limits = limits if limits is not None else ProviderLimits(store.redis)
        self.watchdog = watchdog or WatchdogSettings()
        operational = operational or OperationalEvents(store.redis, history_length=store.history_length)
        self.health = ProviderWatch(store, operational, self.watchdog)
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._share_of = 0
        self.share_concurrency(1)
        self._unhealthy = UnhealthyLog()

    def share_concurrency(self, workers: int) -> None:
        """Each of `workers` live workers takes its share of every provider's max_concurrency.

        Called on every heartbeat: the semaphores are replaced only when the number of
        workers changed, because lanes in flight keep the one they hold, and a fresh one
        beside it would let up to twice the share reach the provider until they finish."""
        workers = max(1, workers)
        if workers == self._share_of:
            return
        self._share_of = workers
        self._semaphores = {
            n: asyncio.Semaphore(max(1, p.settings.max_concurrency // workers))
            for n, p in self.providers.items()
        }

    async def poll(self, rkeys: Sequence[str], *, now: float | None = None) -> Counter[PollOutcome]:
        """Poll a batch of resources of one provider and commit what changed."""
        fixed, now = now is not None, time.time() if now is None else now
        loaded = await self.store.load(rkeys)
        # a dataset without an epoch (new, or Redis lost its data) is given one before the first
        # commit: events made in it can never have the id of one made before the loss
        plan = Plan(loaded.epoch or (await self.store.ensure_epoch())[0], polled=list(rkeys))
        fetches: list[tuple[ResourceRef, ResourceState | None, Watch]] = []
        scans: list[tuple[ResourceRef, WatchMeta, int]] = []
        watches: dict[tuple[int, int], Watch] = {}  # resources of one stored watch share it (Store.load)
        for rkey, meta, state, fails in zip(rkeys, loaded.metas, loaded.states, loaded.failures, strict=True):
            ref = self._ref(rkey, loaded.corrupt, plan)
            if ref is None:
                continue
            if meta is None:
                plan.outcomes[PollOutcome.UNWATCHED] += 1
            elif meta.scan is not None:
                scans.append((ref, meta, fails))
            else:
                watch = watches.get((id(meta), fails))
                if watch is None:
                    watch = watches[id(meta), fails] = _watch(meta, fails)
                fetches.append((ref, state, watch))
        if fetches:
            await self._poll_fetches(fetches, plan, now, fixed=fixed, booked=loaded.booked)
        for ref, meta, fails in scans:
            await self._poll_scan(ref, meta, plan, now, fails)
        await self._apply(plan, now)
        return plan.outcomes

    @staticmethod
    def _ref(rkey: str, corrupt: set[str], plan: Plan) -> ResourceRef | None:
        """The resource `rkey` names; None (counted as corrupt) for an unreadable watch or key."""
        if rkey in corrupt:
            plan.outcomes[PollOutcome.CORRUPT] += 1
            return None
        try:
            return ResourceRef.parse(rkey)
        except ValueError:
            log.warning("not a resource key, skipped: %r", rkey)
            plan.outcomes[PollOutcome.CORRUPT] += 1
            return None

    # ---- single resources ---------------------------------------------------------------

    async def _poll_fetches(
        self, items: list[tuple[ResourceRef, ResourceState | None, Watch]], plan: Plan, now: float,
        *, booked: Mapping[str, float], fixed: bool = False,
    ) -> None:
        """Fetch `items` and decide on what came back. Unless the caller `fixed` the clock, the
        decision is made at the time the answers came back, not at the batch's start: a
        batch held up by Redis (hung, failing over) between the two would otherwise date a
        change it saw later before the change happened."""
        provider = self.providers[items[0][0].provider]
        paused = await self.limits.paused_for(provider.name)
        if paused:
            for ref, _, _ in items:
                plan.reschedule[ref.key] = now + paused
            plan.outcomes[PollOutcome.PAUSED] += len(items)
            plan.health.limited[provider.name] = paused
            return
        t = time.time()
        held = [usable(booked.get(ref.key), t, self.rate_horizon) for ref, _, _ in items]
        need = held.count(None)  # slots are taken for those without a booked one (tasks/rate_slots.py)
        fresh = await self.limits.reserve(provider.name, need, provider.settings.requests_per_second) if need else None
        placed = place(held, fresh, t, self.rate_horizon)
        plan.book([ref.key for ref, _, _ in items], placed, booked)
        if not (items := [items[i] for i, _ in placed.now]):
            return
        results = await self._fetch_all(provider, [ref for ref, _, _ in items], [slot for _, slot in placed.now])
        if not fixed:
            now = max(now, time.time())
        seen: list[Seen] = []
        for (ref, state, watch), result in zip(items, results, strict=True):
            observed = self._observe_fetch(provider, ref, state, watch, result, plan, now)
            if observed is not None:
                seen.append(Seen(state, observed, watch))
        await self._decide(provider, seen, plan, now)

    def _observe_fetch(self, provider: Provider, ref: ResourceRef, state: ResourceState | None, watch: Watch,
                       result: Any, plan: Plan, now: float) -> Observed | None:
        """What one fetch saw; None when its body's fingerprint already says it is unchanged
        (then it is counted and rescheduled here, without a parse)."""
        if isinstance(result, ProviderError):
            return Fetched(ref, result)
        try:
            observed: Parsed | None = None
            if not isinstance(result, bytes):
                observed = observe(ref, provider.normalize(ref, result))
            else:
                fp = body_fingerprint(result, provider.fingerprint_blanks or ())
                due = unchanged_body(state, fp, watch, provider.settings, now)
                if due is None:
                    observed = observe(ref, provider.normalize(ref, provider.parse(result)), fp)
                else:
                    plan.outcomes[PollOutcome.UNCHANGED] += 1
                    plan.reschedule[ref.key] = due.at
        except MalformedPayload as exc:
            return Fetched(ref, exc)
        plan.health.answered.add(provider.name)
        if watch.failures:
            plan.clear_errors.append(ref.key)
        return observed

    async def _fetch_reserved(self, provider: Provider, refs: Sequence[ResourceRef]) -> list[Any]:
        """`_fetch_all` of `refs` in slots reserved now."""
        slots = await self.limits.reserve(provider.name, len(refs), provider.settings.requests_per_second)
        return await self._fetch_all(provider, refs, slots.times(len(refs)))

    async def _fetch_all(self, provider: Provider, refs: Sequence[ResourceRef], slots: Sequence[float]) -> list[Any]:
        """Payloads (or ProviderErrors) of `refs`, in order: raw bodies for a provider that
        fingerprints them (`fingerprint_blanks`). A few lanes, each holding one of the provider's
        concurrency permits, take the next resource until none is left: one task and one semaphore
        wait per lane rather than per resource, which the event loop felt at thousands in flight."""
        results: list[Any] = [None] * len(refs)
        todo = iter(enumerate(refs))
        raw = provider.fingerprint_blanks is not None

        async def lane() -> None:
            async with self._semaphores[provider.name]:
                for i, ref in todo:
                    if (wait := slots[i] - time.time()) > 0:
                        await asyncio.sleep(wait)
                    try:
                        results[i] = await (provider.fetch_body(ref) if raw else provider.fetch(ref))
                    except ProviderError as exc:
                        results[i] = exc

        await asyncio.gather(*(lane() for _ in range(min(len(refs), provider.settings.max_concurrency))))
        return results

    # ---- deciding -------------------------------------------------------------------------

    async def _decide(self, provider: Provider, seen: list[Seen], plan: Plan, now: float) -> None:
        """Read the snapshots stored before of what changed (one round trip), then decide
        each resource and plan its writes (no I/O)."""
        changed = [s for s in seen if needs_old_snapshot(s.state, s.observed)]
        olds = await self.store.snapshots([s.observed.ref.key for s in changed])
        for s, old in zip(changed, olds, strict=True):
            s.observed = replace(s.observed, old=old)
        batch = Batch(provider, now, plan.epoch)
        for s in seen:
            plan.add(provider.name, s, decide(s.state, s.observed, s.watch, batch), now, self._unhealthy)

    # ---- scans ----------------------------------------------------------------------

    async def _poll_scan(self, ref: ResourceRef, meta: WatchMeta, plan: Plan, now: float, failures: int = 0) -> None:
        """A sweep of the scan `ref`; one that fails backs off as a resource's poll does
        (`failures` in a row before it: 5 s doubling), and one that ends clears the count."""
        provider = self.providers[ref.provider]
        items = _watch(meta, scheduled=False, scan=ref.key)
        writes = ScanWrites(ref.key, self.scan_lease)
        pages = Overlap()  # a page's fingerprints are taken while Redis compares the page before
        try:
            async for page in read_ahead(paced(self.limits, provider, provider.scan(ref, meta.scan or {}))):
                await pages.add(self._scan_page(provider, ref, page, items, plan, now))
                if writes.due(plan, time.time()):  # page by page: a 100,000-order scan never holds all of it
                    await pages.drain()
                    await self._apply(plan, now)
            await pages.drain()
            await self._apply(plan, now)  # the last pages' writes (their listing) before the sweep is compared
        except ProviderError as exc:
            with contextlib.suppress(ProviderError):  # a page in flight failing too says no more than this
                await pages.drain()
            await self._apply(plan, now)  # the pages answered before, then the failure
            await self.store.drop_sweep(ref.key)
            seen = Seen(None, Fetched(ref, exc), _watch(meta, failures))
            decision = decide(None, seen.observed, seen.watch, Batch(provider, now, plan.epoch))
            plan.add(provider.name, seen, decision, now, self._unhealthy)
            return
        except BaseException:  # Redis, a bug, a cancel: the job fails; the sweep in progress is no sweep
            with contextlib.suppress(Exception):
                await self.store.drop_sweep(ref.key)
            raise
        finally:
            await pages.cancel()  # only left after a failure
        plan.reschedule[ref.key] = now + meta.interval
        if failures:
            plan.clear_errors.append(ref.key)
        # the sweep is whole: what it no longer lists is confirmed, then it becomes the last one
        found = await unlisted(self.store, self._fetch_reserved, provider, ref, items, self.watchdog.gone_checks)
        await self._decide(provider, found.gone, plan, now)
        await self._apply(plan, now)
        await self.store.end_sweep(ref.key, found.keep)

    async def _scan_page(self, provider: Provider, scan: ResourceRef, page: ScanPage, watch: Watch, plan: Plan,
                         now: float) -> None:
        plan.health.answered.add(provider.name)
        if isinstance(page, ListedItems):
            observed = await self._parse_changed_listings(provider, scan, page, plan, now)
        else:
            plan.listed.append((scan.key, [item.ref.key for item in page]))
            observed = await self._observe_scan_items(provider, page, plan, now)
        states = await self.store.states([o.ref.key for o in observed])
        await self._decide(provider, [Seen(s, o, watch) for o, s in zip(observed, states, strict=True)], plan, now)

    async def _observe_scan_items(self, provider: Provider, page: list[ScanItem], plan: Plan,
                                  now: float) -> list[Parsed]:
        """Listed payloads observed as they are; listed summaries compared, and the full
        details fetched of those that changed."""
        observed: list[Parsed] = []
        previews: list[tuple[ScanItem, str]] = []
        for item in page:
            try:
                if item.preview:
                    previews.append((item, digest(canonical(provider.normalize_preview(item.ref, item.payload)))))
                else:
                    observed.append(observe(item.ref, provider.normalize(item.ref, item.payload)))
            except MalformedPayload as exc:
                plan.outcomes[PollOutcome.MALFORMED] += 1
                log.warning("scan item %s: malformed: %s", item.ref.key, exc, extra={"rkey": item.ref.key})
        if previews:
            observed.extend(await self._fetch_changed_previews(provider, previews, plan, now))
        return observed

    async def _parse_changed_listings(self, provider: Provider, scan: ResourceRef, page: ListedItems, plan: Plan,
                                      now: float) -> list[Parsed]:
        """The listed items whose fingerprint differs from the one stored with their state
        (or that are new, or whose stall needs a look), parsed and normalized; the rest are
        unchanged without a parse."""
        fps = [fingerprint(raw) for _, raw in page.items]
        prefix = ResourceRef.key_of(provider.name, page.kind, "")  # a page's 1,000 keys, built by concatenation
        rkeys = [prefix + rid for rid, _ in page.items]
        same = await self.store.listed_unchanged(rkeys, fps, now=now, sweep=scan.key)
        changed = [i for i, unchanged in enumerate(same) if not unchanged]
        plan.outcomes[PollOutcome.UNCHANGED] += len(same) - len(changed)
        observed = []
        for i in changed:
            (rid, raw), fp = page.items[i], fps[i]
            ref = ResourceRef(provider.name, page.kind, rid)
            try:
                observed.append(observe(ref, provider.normalize(ref, provider.parse(raw)), fp))
            except MalformedPayload as exc:
                plan.outcomes[PollOutcome.MALFORMED] += 1
                log.warning("scan item %s: malformed: %s", ref.key, exc, extra={"rkey": ref.key})
        return observed

    async def _fetch_changed_previews(
        self, provider: Provider, previews: list[tuple[ScanItem, str]], plan: Plan, now: float
    ) -> list[Parsed]:
        """Full details of the resources whose summary changed (or that are new, or whose
        stall needs a look)."""
        states = await self.store.states([item.ref.key for item, _ in previews])
        stale = [(item, p) for (item, p), s in zip(previews, states, strict=True) if _needs_look(s, p, now)]
        plan.outcomes[PollOutcome.UNCHANGED] += len(previews) - len(stale)
        if not stale:
            return []
        slots = await self.limits.reserve(provider.name, len(stale), provider.settings.requests_per_second)
        results = await self._fetch_all(provider, [item.ref for item, _ in stale], slots.times(len(stale)))
        observed = []
        for (item, preview), result in zip(stale, results, strict=True):
            try:
                if isinstance(result, ProviderError):
                    raise result
                payload = provider.parse(result) if isinstance(result, bytes) else result
                observed.append(observe(item.ref, provider.normalize(item.ref, payload), preview))
            except ProviderError as exc:
                plan.outcomes[PollOutcome.MALFORMED if isinstance(exc, MalformedPayload) else PollOutcome.ERROR] += 1
                log.warning("scan item %s: %s", item.ref.key, exc, extra={"rkey": item.ref.key})
        return observed

    # ---- commit ----------------------------------------------------------------------

    async def _apply(self, plan: Plan, now: float | None = None) -> None:
        for name, seconds in plan.pause.items():
            log.warning("provider %s answered 429: every worker pauses it for %.1fs", name, seconds)
            await self.limits.pause(name, seconds)
        plan.pause.clear()
        if not plan.has_writes():
            return
        now = time.time() if now is None else now
        committed = await self.store.commit_batch(
            plan.commits, reschedule=plan.reschedule, clear_errors=plan.clear_errors, errors=plan.errors,
            epoch=plan.epoch, health=plan.health, polled=plan.polled, listed=plan.listed, booked=plan.booked,
            unbooked=plan.unbooked, now=now,
        )
        await self.health.after(plan.health, committed.health, now)
        events: list[Event] = []
        for commit, ok, outcome in zip(plan.commits, committed.made, plan.outcomes_of_commits, strict=True):
            if ok:
                plan.outcomes[outcome] += 1
                events.extend(commit.events)
            else:
                plan.outcomes[PollOutcome.CONFLICT] += 1
        for event in events:
            log.info(
                "event %s %s %s", event.id, event.type, event.summary, extra={"rkey": event.rkey, "event_id": event.id}
            )
        if events and self.on_events:
            self.on_events(events)
        plan.clear_writes()


def _needs_look(state: ResourceState | None, preview: str, now: float) -> bool:
    """A listed summary whose resource must be fetched: new, changed, or with a stall due or
    not tracked yet (as lua/match_listed.lua decides for listed bytes)."""
    if state is None or state.preview != preview or state.entered_at is None:
        return True
    return state.stall_at is not None and state.stall_at <= now
