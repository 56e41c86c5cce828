"""One poll batch: fetch, normalize, diff, classify, commit. The thin I/O around the pure core.

A batch holds resources of one provider. They are fetched concurrently (under the
provider's limits); the store reads and the commit are one round trip each.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.backoff import poll_backoff
from core.diff import diff
from core.events import build_events, change_of
from core.fingerprint import body_fingerprint, canonical, digest, fingerprint
from core.schedule import next_poll_at
from model.errors import MalformedPayload, NotFound, ProviderError, RateLimited, Unauthorized, Unavailable
from model.events import Event
from model.resources import ListedItems, ResourceRef, ScanItem, ScanPage, Snapshot
from providers.base import Provider
from store import keys
from store.rates import ProviderLimits, Reservation
from store.snapshots import Commit, ResourceState, Store, WatchMeta, pack_snapshot

__all__ = ["PollOutcome", "Poller"]

log = logging.getLogger("statehook.poll")
T = TypeVar("T")


class PollOutcome(enum.StrEnum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    BASELINE = "baseline"
    GONE = "gone"
    NOT_FOUND = "not_found"
    MALFORMED = "malformed"
    UNAVAILABLE = "unavailable"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    CONFLICT = "conflict"
    ERROR = "error"
    UNWATCHED = "unwatched"
    PAUSED = "paused"
    CORRUPT = "corrupt"


@dataclass(slots=True)
class _Observed:
    """One resource's fresh fetch, normalized."""

    ref: ResourceRef
    snapshot: Snapshot
    canonical: bytes
    digest: str
    preview: str = ""


@dataclass(slots=True)
class _Plan:
    """What a batch will write, gathered before the single commit round trip."""

    commits: list[Commit] = field(default_factory=list)
    outcomes_of_commits: list[PollOutcome] = field(default_factory=list)
    reschedule: dict[str, float] = field(default_factory=dict)
    clear_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    outcomes: Counter[PollOutcome] = field(default_factory=Counter)
    pause: dict[str, float] = field(default_factory=dict)
    unhealthy: dict[str, str] = field(default_factory=dict)
    healthy: set[str] = field(default_factory=set)
    epoch: str = ""
    """the dataset the batch read (`Store.load`): its commits are guarded by it, and it is
    part of every event id"""


async def read_ahead(pages: AsyncIterator[T]) -> AsyncIterator[T]:
    """`pages`, with the next one already being fetched while the caller works on this one:
    a listed page's transfer overlaps the comparison of the page before it."""
    it = aiter(pages)
    ahead: asyncio.Future[T] = asyncio.ensure_future(anext(it))
    try:
        while True:
            try:
                page = await ahead
            except StopAsyncIteration:
                return
            ahead = asyncio.ensure_future(anext(it))
            yield page
    finally:
        if not ahead.done():
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await ahead


def _unchanged_body_due(
    provider: Provider, meta: WatchMeta, state: ResourceState | None, fp: str, now: float
) -> float | None:
    """The next due time of a resource whose fetched body has the fingerprint of its last
    poll: unchanged without a parse. None when that cannot be decided without one (no
    fingerprint or terminal flag stored yet, a different body, or polling should stop)."""
    if state is None or state.terminal is None or not fp or state.preview != fp:
        return None
    return next_poll_at(now, interval=meta.interval, terminal=state.terminal, changed_at=state.changed_at,
                        settings=provider.settings)


class Poller:
    def __init__(
        self,
        store: Store,
        providers: dict[str, Provider],
        *,
        on_events: Callable[[list[Event]], None] | None = None,
        limits: ProviderLimits | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.on_events = on_events
        self.limits = limits if limits is not None else ProviderLimits(store.redis)
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._share_of = 0
        self.share_concurrency(1)
        self._unhealthy_logged: dict[str, float] = {}

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
        now = time.time() if now is None else now
        loaded = await self.store.load(rkeys)
        plan = _Plan()
        # a dataset without an epoch (new, or Redis lost its data) is given one before the first
        # commit: events made in it can never have the id of one made before the loss
        plan.epoch = loaded.epoch or (await self.store.ensure_epoch())[0]
        fetches: list[tuple[ResourceRef, WatchMeta, ResourceState | None, int]] = []
        scans: list[tuple[ResourceRef, WatchMeta]] = []
        for rkey, meta, state, fails in zip(rkeys, loaded.metas, loaded.states, loaded.failures, strict=True):
            if rkey in loaded.corrupt:
                plan.outcomes[PollOutcome.CORRUPT] += 1
                continue
            try:
                ref = ResourceRef.parse(rkey)
            except ValueError:
                log.warning("not a resource key, skipped: %r", rkey)
                plan.outcomes[PollOutcome.CORRUPT] += 1
                continue
            if meta is None:
                plan.outcomes[PollOutcome.UNWATCHED] += 1
                continue
            if meta.scan is not None:
                scans.append((ref, meta))
            else:
                fetches.append((ref, meta, state, fails))
        if fetches:
            await self._poll_fetches(fetches, plan, now)
        for ref, meta in scans:
            await self._poll_scan(ref, meta, plan, now)
        await self._apply(plan)
        return plan.outcomes

    # ---- single resources ---------------------------------------------------------------

    async def _poll_fetches(
        self, items: list[tuple[ResourceRef, WatchMeta, ResourceState | None, int]], plan: _Plan, now: float
    ) -> None:
        provider = self.providers[items[0][0].provider]
        paused = await self.limits.paused_for(provider.name)
        if paused:
            for ref, *_ in items:
                plan.reschedule[ref.key] = now + paused
            plan.outcomes[PollOutcome.PAUSED] += len(items)
            return
        slots = await self.limits.reserve(provider.name, len(items), provider.settings.requests_per_second)
        results = await self._fetch_all(provider, [ref for ref, *_ in items], slots)
        observed: list[tuple[_Observed, WatchMeta, ResourceState | None]] = []
        for (ref, meta, state, fails), result in zip(items, results, strict=True):
            if isinstance(result, ProviderError):
                self._failed(provider, ref, meta, state, fails, result, plan, now)
                continue
            try:
                if isinstance(result, bytes):
                    fp = body_fingerprint(result, provider.fingerprint_blanks or ())
                    due = _unchanged_body_due(provider, meta, state, fp, now)
                    if due is not None:
                        plan.outcomes[PollOutcome.UNCHANGED] += 1
                        plan.reschedule[ref.key] = due
                    else:
                        obs = self._observe(provider, ref, provider.parse(result))
                        obs.preview = fp
                        observed.append((obs, meta, state))
                else:
                    observed.append((self._observe(provider, ref, result), meta, state))
            except MalformedPayload as exc:
                self._failed(provider, ref, meta, state, fails, exc, plan, now)
                continue
            plan.healthy.add(provider.name)
            if fails:
                plan.clear_errors.append(ref.key)
        await self._plan_observed(provider, observed, plan, now, schedule=True)

    async def _fetch_all(self, provider: Provider, refs: Sequence[ResourceRef], slots: Reservation) -> list[Any]:
        """Payloads (or ProviderErrors) of `refs`, in order: raw bodies for a provider that
        fingerprints them (`fingerprint_blanks`). A few lanes, each holding one of
        the provider's concurrency permits, take the next resource until none is left: one
        task and one semaphore wait per lane rather than per resource, which the event
        loop felt at thousands of resources in flight."""
        results: list[Any] = [None] * len(refs)
        todo = iter(enumerate(refs))
        raw = provider.fingerprint_blanks is not None

        async def lane() -> None:
            async with self._semaphores[provider.name]:
                for i, ref in todo:
                    await self.limits.wait_for_slot(slots, i)
                    try:
                        results[i] = await (provider.fetch_body(ref) if raw else provider.fetch(ref))
                    except ProviderError as exc:
                        results[i] = exc

        await asyncio.gather(*(lane() for _ in range(min(len(refs), provider.settings.max_concurrency))))
        return results

    def _observe(self, provider: Provider, ref: ResourceRef, payload: Any) -> _Observed:
        snap = provider.normalize(ref, payload)
        body = canonical(snap)
        return _Observed(ref, snap, body, digest(body))

    async def _plan_observed(
        self,
        provider: Provider,
        observed: list[tuple[_Observed, WatchMeta, ResourceState | None]],
        plan: _Plan,
        now: float,
        *,
        schedule: bool,
    ) -> None:
        changed = [(o, m, s) for o, m, s in observed if s is not None and s.digest != o.digest]
        olds = await self.store.snapshots([o.ref.key for o, _, _ in changed])
        old_by_key = dict(zip((o.ref.key for o, _, _ in changed), olds, strict=True))
        for obs, meta, state in observed:
            if state is not None and state.digest == obs.digest:
                plan.outcomes[PollOutcome.UNCHANGED] += 1
                info = provider.describe(obs.ref, obs.snapshot) if schedule else None
                terminal = info.terminal if info is not None else state.terminal
                if obs.preview and (obs.preview != state.preview or terminal != state.terminal):
                    # remember the fingerprint, so that the next look needs no fetch or no parse
                    same = ResourceState(state.digest, state.seq, state.changed_at, obs.preview, terminal)
                    plan.commits.append(Commit(obs.ref, state, same, pack_snapshot(obs.canonical), "-", []))
                    plan.outcomes_of_commits.append(PollOutcome.UNCHANGED)
                    plan.outcomes[PollOutcome.UNCHANGED] -= 1
                    state = same
                if info is not None:
                    due = next_poll_at(
                        now,
                        interval=meta.interval,
                        terminal=info.terminal,
                        changed_at=state.changed_at,
                        settings=provider.settings,
                    )
                    if due is None:
                        plan.commits.append(self._stop(obs, state))
                        plan.outcomes_of_commits.append(PollOutcome.UNCHANGED)
                    else:
                        plan.reschedule[obs.ref.key] = due
                continue
            old = old_by_key.get(obs.ref.key) if state is not None else None
            info = provider.describe(obs.ref, obs.snapshot)
            if state is None or old is None:
                drafts = [provider.discovered(obs.ref, obs.snapshot)] if meta.discovered else []
                outcome = PollOutcome.BASELINE
                base_seq = state.seq if state else 0
            else:
                drafts = provider.classify(obs.ref, old, obs.snapshot, diff(old, obs.snapshot))
                outcome = PollOutcome.CHANGED
                base_seq = state.seq
            change = change_of(plan.epoch, state.digest if state else "", obs.digest)
            events = build_events(obs.ref, info, drafts, base_seq=base_seq, now=now, snapshot=obs.snapshot,
                                  change=change)
            new_state = ResourceState(obs.digest, base_seq + len(events), now, obs.preview,
                                      info.terminal if schedule and obs.preview else None)
            due_at: float | str | None = "-"
            if schedule:
                due_at = next_poll_at(
                    now, interval=meta.interval, terminal=info.terminal, changed_at=now, settings=provider.settings
                )
            plan.commits.append(Commit(obs.ref, state, new_state, pack_snapshot(obs.canonical), due_at, events))
            plan.outcomes_of_commits.append(outcome)

    @staticmethod
    def _stop(obs: _Observed, state: ResourceState) -> Commit:
        return Commit(obs.ref, state, state, pack_snapshot(obs.canonical), None, [])

    def _failed(
        self,
        provider: Provider,
        ref: ResourceRef,
        meta: WatchMeta,
        state: ResourceState | None,
        fails: int,
        exc: ProviderError,
        plan: _Plan,
        now: float,
    ) -> None:
        if isinstance(exc, NotFound) and state is not None:
            plan.commits.append(self._gone_commit(provider, ref, state, now, plan.epoch))
            plan.outcomes_of_commits.append(PollOutcome.GONE)
            return
        if isinstance(exc, RateLimited):
            plan.outcomes[PollOutcome.RATE_LIMITED] += 1
            plan.reschedule[ref.key] = now + exc.retry_after
            plan.pause[provider.name] = max(plan.pause.get(provider.name, 0.0), exc.retry_after)
            return
        if isinstance(exc, Unauthorized):
            plan.outcomes[PollOutcome.UNAUTHORIZED] += 1
            plan.unhealthy[provider.name] = str(exc)
            last = self._unhealthy_logged.get(provider.name, 0.0)
            if now - last >= meta.interval:
                self._unhealthy_logged[provider.name] = now
                log.error("provider %s is unhealthy: %s", provider.name, exc)
            plan.reschedule[ref.key] = now + meta.interval
            return
        outcome = {
            MalformedPayload: PollOutcome.MALFORMED,
            Unavailable: PollOutcome.UNAVAILABLE,
            NotFound: PollOutcome.NOT_FOUND,
        }.get(type(exc), PollOutcome.ERROR)
        plan.outcomes[outcome] += 1
        plan.errors.append(ref.key)
        log.warning("poll %s: %s: %s", ref.key, outcome.value, exc, extra={"rkey": ref.key})
        plan.reschedule[ref.key] = now + max(meta.interval, poll_backoff(fails + 1))

    def _gone_commit(
        self, provider: Provider, ref: ResourceRef, state: ResourceState, now: float, epoch: str
    ) -> Commit:
        snap = {"gone": True}
        body = canonical(snap)
        # the old snapshot is not needed for the event's title: the rkey names the resource
        info = provider.describe(ref, {})
        gone_digest = digest(body)
        events = build_events(ref, info, [provider.gone(ref, {})], base_seq=state.seq, now=now, snapshot=None,
                              change=change_of(epoch, state.digest, gone_digest))
        new = ResourceState(gone_digest, state.seq + len(events), now)
        return Commit(ref, state, new, pack_snapshot(body), None, events)

    # ---- scans ----------------------------------------------------------------------

    async def _poll_scan(self, ref: ResourceRef, meta: WatchMeta, plan: _Plan, now: float) -> None:
        provider = self.providers[ref.provider]
        item_meta = WatchMeta(interval=meta.interval, discovered=meta.discovered, source="scan")
        try:
            async for page in read_ahead(provider.scan(ref, meta.scan or {})):
                await self._plan_scan_page(provider, page, item_meta, plan, now)
                # commit page by page: a 100,000-order scan never holds all of it in memory
                await self._apply(plan, keep_counts=True)
        except ProviderError as exc:
            self._failed(provider, ref, meta, None, 0, exc, plan, now)
            return
        plan.reschedule[ref.key] = now + meta.interval

    async def _plan_scan_page(
        self, provider: Provider, page: ScanPage, meta: WatchMeta, plan: _Plan, now: float
    ) -> None:
        if isinstance(page, ListedItems):
            observed = await self._parse_changed_listings(provider, page, plan)
        else:
            observed = await self._observe_scan_items(provider, page, plan)
        states = await self.store.states([o.ref.key for o in observed])
        await self._plan_observed(
            provider, [(o, meta, s) for o, s in zip(observed, states, strict=True)], plan, now, schedule=False
        )

    async def _observe_scan_items(self, provider: Provider, page: list[ScanItem], plan: _Plan) -> list[_Observed]:
        """Listed payloads observed as they are; listed summaries compared, and the full
        details fetched of those that changed."""
        observed: list[_Observed] = []
        previews: list[tuple[ScanItem, str]] = []
        for item in page:
            try:
                if item.preview:
                    previews.append((item, digest(canonical(provider.normalize_preview(item.ref, item.payload)))))
                else:
                    observed.append(self._observe(provider, item.ref, item.payload))
            except MalformedPayload as exc:
                plan.outcomes[PollOutcome.MALFORMED] += 1
                log.warning("scan item %s: malformed: %s", item.ref.key, exc, extra={"rkey": item.ref.key})
        if previews:
            observed.extend(await self._fetch_changed_previews(provider, previews, plan))
        return observed

    async def _parse_changed_listings(self, provider: Provider, page: ListedItems, plan: _Plan) -> list[_Observed]:
        """The listed items whose fingerprint differs from the one stored with their state
        (or that are new), parsed and normalized; the rest are unchanged without a parse."""
        fps = [fingerprint(raw) for _, raw in page.items]
        prefix = ResourceRef.key_of(provider.name, page.kind, "")  # a page's 1,000 keys, built by concatenation
        same = await self.store.listed_unchanged([prefix + rid for rid, _ in page.items], fps)
        changed = [i for i, unchanged in enumerate(same) if not unchanged]
        plan.outcomes[PollOutcome.UNCHANGED] += len(same) - len(changed)
        observed = []
        for i in changed:
            (rid, raw), fp = page.items[i], fps[i]
            ref = ResourceRef(provider.name, page.kind, rid)
            try:
                obs = self._observe(provider, ref, provider.parse(raw))
            except MalformedPayload as exc:
                plan.outcomes[PollOutcome.MALFORMED] += 1
                log.warning("scan item %s: malformed: %s", ref.key, exc, extra={"rkey": ref.key})
                continue
            obs.preview = fp
            observed.append(obs)
        return observed

    async def _fetch_changed_previews(
        self, provider: Provider, previews: list[tuple[ScanItem, str]], plan: _Plan
    ) -> list[_Observed]:
        """Full details of the resources whose summary changed (or that are new)."""
        states = await self.store.states([item.ref.key for item, _ in previews])
        stale = [(item, p) for (item, p), s in zip(previews, states, strict=True) if s is None or s.preview != p]
        plan.outcomes[PollOutcome.UNCHANGED] += len(previews) - len(stale)
        if not stale:
            return []
        slots = await self.limits.reserve(provider.name, len(stale), provider.settings.requests_per_second)
        results = await self._fetch_all(provider, [item.ref for item, _ in stale], slots)
        observed = []
        for (item, preview), result in zip(stale, results, strict=True):
            try:
                if isinstance(result, ProviderError):
                    raise result
                payload = provider.parse(result) if isinstance(result, bytes) else result
                obs = self._observe(provider, item.ref, payload)
            except ProviderError as exc:
                plan.outcomes[
                    PollOutcome.ERROR if not isinstance(exc, MalformedPayload) else PollOutcome.MALFORMED
                ] += 1
                log.warning("scan item %s: %s", item.ref.key, exc, extra={"rkey": item.ref.key})
                continue
            obs.preview = preview
            observed.append(obs)
        return observed

    # ---- commit ----------------------------------------------------------------------

    async def _apply(self, plan: _Plan, *, keep_counts: bool = False) -> None:
        for name, seconds in plan.pause.items():
            log.warning("provider %s answered 429: every worker pauses it for %.1fs", name, seconds)
            await self.limits.pause(name, seconds)
        plan.pause.clear()
        if plan.unhealthy:
            await self.store.redis.hset(keys.PROVIDER_HEALTH, mapping=plan.unhealthy)  # type: ignore[misc]
            plan.healthy -= set(plan.unhealthy)
            plan.unhealthy.clear()
        if plan.healthy:
            await self.store.redis.hdel(keys.PROVIDER_HEALTH, *plan.healthy)  # type: ignore[misc]
            plan.healthy.clear()
        if not (plan.commits or plan.reschedule or plan.clear_errors or plan.errors):
            return
        committed = await self.store.commit(
            plan.commits,
            reschedule=plan.reschedule,
            clear_errors=plan.clear_errors,
            errors=plan.errors,
            epoch=plan.epoch,
        )
        events: list[Event] = []
        for commit, ok, outcome in zip(plan.commits, committed, plan.outcomes_of_commits, strict=True):
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
        plan.commits.clear()
        plan.outcomes_of_commits.clear()
        plan.reschedule.clear()
        plan.clear_errors.clear()
        plan.errors.clear()
