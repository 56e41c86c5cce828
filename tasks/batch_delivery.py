"""First attempts in batches: one job delivers many events to one destination.

A delivery job per (event, destination) caps a worker at ARQ's own job rate (about 1,000
trivial jobs/s here, see docs/performance.md), so the dispatcher hands each destination
the events of one outbox read as one batch job. Each event keeps its own identity:

- a *delivery mark* per (event, destination) in Redis, leased to the batch before the send
  and kept as "done" for `keep_mark_s` once the event is handed over, makes a second batch
  with the same event (a reclaimed outbox entry) skip it; ARQ re-running the same batch (a
  Redis error, a cancel) takes back the marks it had not settled;
- events of one resource go out in order; different resources go out concurrently;
- a transient failure becomes an ordinary `deliver` job (id `deliver:{event}:{dest}`) that
  follows the destination's retry schedule from attempt 2; permanent failures are
  dead-lettered at once, as by a single delivery;
- the attempts' records and stats go to Redis in one round trip at the end;
- what the batch did not finish (its deadline passed, a bug) becomes a `deliver` job too,
  so that nothing read from the outbox is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis

from model.events import Event
from notifiers.base import Notifier
from store import keys
from store.unavailable import is_redis_down
from tasks.deliver import DeliveryRecords, attempt_delivery, disabled_reason

__all__ = ["BatchResult", "deliver_batch", "group_by_resource"]

log = logging.getLogger("statehook.deliver")



@dataclass(slots=True)
class BatchResult:
    delivered: int = 0
    dead_lettered: int = 0
    handed_over: int = 0
    """events given a `deliver` job: first attempt failed (retry on the schedule), or not
    attempted before the deadline"""
    skipped: int = 0
    """events whose mark another run holds (sent, or being sent)"""


HandOver = Callable[[Event, float | None], Awaitable[None]]
"""Enqueue a `deliver` job for an event: (event, retry in seconds, or None for a first
attempt)."""
T = TypeVar("T")
LEASE_MARGIN_S = 60
"""A mark outlives its batch's deadline by this much before another batch may take it."""


def group_by_resource(events: Sequence[tuple[str, str, T]]) -> list[list[tuple[str, T]]]:
    """(event id, rkey, event) in outbox order → one chain per resource, each in order. Pure."""
    chains: dict[str, list[tuple[str, T]]] = defaultdict(list)
    for event_id, rkey, raw in events:
        chains[rkey].append((event_id, raw))
    return list(chains.values())


# KEYS: the delivery marks. ARGV: owner (the batch job's id), lease seconds. A mark is
# taken when free, or taken again by the same batch job (ARQ re-running it after a Redis
# error or a cancel); "done" or another batch's lease is left alone. Returns 1/0 per key.
_CLAIM = """
local out = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if not owner or owner == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'EX', tonumber(ARGV[2]))
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""


def _redis_failure(exc: BaseException) -> BaseException | None:
    """`exc` itself, or the first failure inside a task group's, when it is Redis being down."""
    if is_redis_down(exc):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _redis_failure(inner)
        if found is not None:
            return found
    return None


async def _claim(redis: aioredis.Redis, event_ids: Sequence[str], destination: str, owner: str,
                 lease_s: int) -> list[bool]:
    if not event_ids:
        return []
    marks = [keys.delivery_mark(eid, destination) for eid in event_ids]
    claim = redis.register_script(_CLAIM)
    return [bool(r) for r in await claim(keys=marks, args=[owner, lease_s])]


async def _settle(redis: aioredis.Redis, destination: str, done: Sequence[str], released: Sequence[str],
                  keep_s: int) -> None:
    """`done`: handed over for good (sent, dead-lettered or given a job of their own), kept
    as "done" for `keep_s`; `released`: claimed but not handed over (a cancelled batch),
    freed so that a re-run sends them."""
    if not done and not released:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for eid in done:
            pipe.set(keys.delivery_mark(eid, destination), "done", ex=keep_s)
        if released:
            pipe.delete(*(keys.delivery_mark(eid, destination) for eid in released))
        await pipe.execute()


async def deliver_batch(
    redis: aioredis.Redis,
    notifier: Notifier | None,
    destination: str,
    events: Sequence[bytes],
    hand_over: HandOver,
    *,
    owner: str,
    concurrency: int,
    deadline_s: float,
    keep_mark_s: int,
) -> BatchResult:
    """First attempt of each event of `events` that no other batch claimed. `owner` names
    this batch (its job id): a re-run of the same batch takes its own marks back."""
    result = BatchResult()
    parsed = [Event.from_json(raw) for raw in events]
    claimed = await _claim(redis, [e.id for e in parsed], destination, owner, int(deadline_s) + LEASE_MARGIN_S)
    mine = [(e.id, e.rkey, e) for e, ok in zip(parsed, claimed, strict=True) if ok]
    result.skipped = len(parsed) - len(mine)
    final: set[str] = set()
    retry: list[tuple[str, Event, float]] = []
    lanes = asyncio.Semaphore(concurrency)
    records = DeliveryRecords(trim=False)
    disabled = await disabled_reason(redis, destination)

    async def chain(items: list[tuple[str, Event]]) -> None:
        for eid, event in items:
            async with lanes:
                outcome = await attempt_delivery(redis, notifier, destination, event, 1, records, disabled)
            if outcome.retry_in is not None:
                retry.append((eid, event, outcome.retry_in))
                continue
            final.add(eid)
            if outcome.delivered:
                result.delivered += 1
            else:
                result.dead_lettered += 1

    started = time.monotonic()
    try:
        try:
            # a TaskGroup, not gather: when one chain fails, the others stop too, so that
            # nothing is still being sent while the rest is handed over to jobs of their own
            async with asyncio.timeout(deadline_s), asyncio.TaskGroup() as chains:
                for items in group_by_resource(mine):
                    chains.create_task(chain(items))
        except TimeoutError:
            log.warning("delivery batch to %s passed its deadline of %.0fs: the rest get jobs of their own",
                        destination, deadline_s)
        except Exception as exc:
            down = _redis_failure(exc)
            if down is not None:
                raise down from None  # the job runs the batch again once Redis answers (its marks are its own)
            log.exception("delivery batch to %s failed: the rest get jobs of their own", destination)
        for eid, event, delay in retry:
            await hand_over(event, delay)
            final.add(eid)
        for eid, _, event in mine:
            if eid not in final:
                await hand_over(event, None)
                final.add(eid)
        result.handed_over = len(mine) - result.delivered - result.dead_lettered
    finally:
        await records.flush(redis)
        await _settle(redis, destination, sorted(final), [eid for eid, _, _ in mine if eid not in final], keep_mark_s)
        log.debug("batch to %s: %d of %d sent in %.2fs", destination, result.delivered, len(events),
                  time.monotonic() - started)
    return result
