"""The one module that knows ARQ's job queue: the job names, the ids and expiry of every job
statehook enqueues, typed functions to enqueue each kind, and the two places where statehook
works around ARQ 0.28's own code. tests/test_arq_pin.py pins the ARQ version and the internals
used below (key prefixes, `serialize_job`, `Worker.start_jobs`, ...): an ARQ upgrade fails
that test first.

The bulk enqueue. `ArqRedis.enqueue_job` takes four round trips per job (WATCH, EXISTS, then
MULTI/PSETEX/ZADD/EXEC). The scheduler enqueues a tick's poll batches one after another from
inside a worker whose event loop is busy polling, so 100 batches took ~2 s to appear in the
queue (traced per job in a two-worker pass of 20,000 orders): the pass started on the first
few while the rest were still being written. `enqueue_jobs` does what `enqueue_job` does for
each job (same keys, same serialization, same refusal of an id that has a job or a result)
in one Lua script (worker/queue_enqueue.lua), atomically.

The pickup. Every poll iteration (`poll_delay`, 50 ms here) a worker with a free job slot
reads the first due job ids of the queue and tries each in turn: WATCH, EXISTS and ZSCORE of
its in-progress key, then MULTI/EXEC, four round trips that each wait behind the event
loop's other work. A running job stays in the queue until it ends, so the jobs that are
running (in this worker or another) are tried again at every iteration and refused. With two
workers polling 20,000 orders in batches of 200, Redis's commandstats counted ~515 WATCH per
pass for 100 enqueued and 100 started jobs: ~300 wasted tries, ~1,200 round trips.
`skip_running_jobs` puts a filter in front of the worker's own `start_jobs`: the ids of its
own running jobs are dropped at once, the rest are checked with one pipelined EXISTS, and only
the jobs that nobody runs go on to ARQ's own (unchanged, race-safe) claim. A job that starts
elsewhere between the check and the claim is still refused by ARQ's WATCH.

The share. ARQ's pickup takes up to `max_jobs` (32) jobs at once, so the first worker to look
after a scheduler tick held most of its poll batches while the others had few or none, and at
the end of a pass one worker still worked through its pile while the rest were idle. While
other workers are live, the filter also keeps a worker from holding more poll batches of a
provider than its share of the provider's concurrency can work on, and one more
(worker/fair_pickup.py, `Runtime.poll_room`); the rest stay in the queue for the other
workers. A worker alone keeps ARQ's limit. The end of a poll batch wakes the worker's loop for a pickup
at once (`Pickup`, worker/resilient.py) instead of at its next `poll_delay`: a batch at
full speed takes about as long as that delay, and a capped worker would wait for it between
batches.
"""

from __future__ import annotations

import hashlib
import time
import types
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError

from model.routes import Route
from model.time_intervals import NamedTimeInterval
from store.digests import DigestBuffer
from store.muted import MutedLog
from store.outbox import Outbox
from store.recent import RecentEvents
from store.reminders import Reminders
from store.silences import SilenceCache, SilenceStore
from store.window_hold import WindowHold
from tasks.dispatch import Dispatcher, OutageWatch, ReminderHooks
from tasks.muting import MuteStores
from worker.fair_pickup import Pickup, fair_share

__all__ = [
    "ARQ_VERSION",
    "DELIVER_EXPIRES",
    "ENQUEUE_CHUNK",
    "ArqQueue",
    "EventJsons",
    "Job",
    "JobSpec",
    "PollJob",
    "batch_job_id",
    "delivery_job_id",
    "dispatcher_for",
    "enqueue_delivery",
    "enqueue_delivery_batch",
    "enqueue_jobs",
    "enqueue_polls",
    "hurry_deliveries",
    "mute_stores",
    "not_running",
    "replay_job_id",
    "schedule_now",
    "skip_running_jobs",
]

ARQ_VERSION = "0.28.0"
"""The ARQ whose internals this module uses (pyproject pins it; tests/test_arq_pin.py checks)."""


class Job(StrEnum):
    """The job functions' names, as ARQ knows them (worker/settings.py registers them)."""

    SCHEDULE_NOW = "schedule_now"
    """the scheduler as an ordinary job, for the API to run it at once after an inbound hook
    made a resource due (the cron runs it every second): a hint is polled in milliseconds"""
    POLL_BATCH = "poll_batch"
    POLL_SCAN = "poll_scan"
    DELIVER = "deliver"
    DELIVER_EVENTS = "deliver_events"
    PROBE_DESTINATION = "probe_destination"
    """one probe of a destination whose circuit is open (tasks/circuit.py)"""
    FLUSH_DESTINATION = "flush_destination"
    """the held deliveries of a destination that answers again (tasks/circuit_flush.py)"""


DELIVER_EXPIRES = 3 * 86400
"""A delivery job may be retried for days (Svix's schedule spans ~38 h): ARQ's default
job expiry of one day would drop it."""
ENQUEUE_CHUNK = 500
"""Jobs per enqueue script: a tick of 20,000 claims in batches of 200 is one script."""

_ENQUEUE = (Path(__file__).with_name("queue_enqueue.lua")).read_text()


# -- job ids -----------------------------------------------------------------------------------


def delivery_job_id(event_id: str, destination: str) -> str:
    return f"deliver:{event_id}:{destination}"


def replay_job_id(event_id: str, destination: str, entry_id: str) -> str:
    """A replayed dead letter's job: the original job id may still be remembered by ARQ, and
    replaying one entry twice at once must not deliver it twice."""
    return f"{delivery_job_id(event_id, destination)}:replay:{entry_id}"


def batch_job_id(event_ids: Sequence[str], destination: str) -> str:
    h = hashlib.blake2b("\n".join(event_ids).encode(), digest_size=12).hexdigest()
    return f"deliver-batch:{destination}:{h}"


def poll_job_id(kind: str, provider: str, rkeys: Sequence[str], claimed_at: float) -> str:
    """Deterministic for one claim of one batch: a re-run of the same scheduler tick cannot
    enqueue it twice, while the next claim of the same resources gets a new id."""
    h = hashlib.blake2b("\n".join(rkeys).encode(), digest_size=10).hexdigest()
    return f"{kind}:{provider}:{h}:{claimed_at:.3f}"


# -- typed enqueue functions -------------------------------------------------------------------


async def enqueued(redis: ArqRedis, function: str, *args: Any, _job_id: str, **options: Any) -> bool:
    """ARQ's `enqueue_job`: True when enqueued, False when the job is known (queued, running,
    or done with its result kept). ARQ also answers None when the connection broke at its
    EXEC (redis-py raises WatchError for a watched pipeline whose connection failed, and a
    demoted master's READONLY is one): then nothing was enqueued, and that is Redis failing,
    raised as such, never a duplicate to skip (its events would be acknowledged, undelivered)."""
    if await redis.enqueue_job(function, *args, _job_id=_job_id, **options) is not None:
        return True
    if await redis.exists(job_key_prefix + _job_id, result_key_prefix + _job_id):
        return False
    raise RedisConnectionError("a job's enqueue did not happen: the connection failed at its EXEC")


async def enqueue_delivery(redis: ArqRedis, event_id: str, event_json: bytes, destination: str, *,
                           attempts_before: int = 0, defer_s: float | None = None,
                           replay_of: str | None = None) -> bool:
    """A `deliver` job: one event to one destination, retried on the destination's schedule.
    `replay_of`: the dead letter's entry id, when it is one replayed. False if its id is known."""
    job_id = delivery_job_id(event_id, destination) if replay_of is None else (
        replay_job_id(event_id, destination, replay_of))
    return await enqueued(redis, Job.DELIVER.value, event_json, destination, attempts_before,
                          _job_id=job_id, _expires=DELIVER_EXPIRES, _defer_by=defer_s)


class EventJsons(list[bytes]):
    """A `deliver_events` job's events. ARQ logs every job's arguments as their `repr`, which
    for a list of event JSONs was a copy of all their bytes, escaped, for a line that keeps
    80 characters: this one says how many there are. It pickles as itself; a job enqueued
    with a plain list runs the same."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} events>"


async def enqueue_delivery_batch(redis: ArqRedis, event_ids: Sequence[str], events_json: Sequence[bytes],
                                 destination: str) -> bool:
    """A `deliver_events` job: first attempts of one outbox read's events to one destination."""
    return await enqueued(redis, Job.DELIVER_EVENTS.value, EventJsons(events_json), destination,
                          _job_id=batch_job_id(event_ids, destination), _expires=DELIVER_EXPIRES)


async def schedule_now(redis: ArqRedis) -> bool:
    """Run the scheduler at once (each call is a job of its own)."""
    job = await redis.enqueue_job(Job.SCHEDULE_NOW.value, _job_id=f"{Job.SCHEDULE_NOW.value}:{uuid.uuid4().hex}")
    return job is not None


@dataclass(frozen=True, slots=True)
class PollJob:
    """Resources of one provider polled by one job (`poll_batch`), or one scan (`poll_scan`,
    `rkeys` its one key); `not_before` is a Unix time (None: now)."""

    provider: str
    rkeys: tuple[str, ...]
    not_before: float | None = None
    scan: bool = False


async def enqueue_polls(redis: ArqRedis, polls: Sequence[PollJob], claimed_at: float) -> int:
    """One scheduler tick's poll jobs, ENQUEUE_CHUNK per round trip; returns how many were new."""
    jobs = [_poll_spec(p, claimed_at) for p in polls]
    added = 0
    for i in range(0, len(jobs), ENQUEUE_CHUNK):
        added += await enqueue_jobs(redis, jobs[i : i + ENQUEUE_CHUNK])
    return added


def _poll_spec(poll: PollJob, claimed_at: float) -> JobSpec:
    if poll.scan:
        (rkey,) = poll.rkeys
        return JobSpec(Job.POLL_SCAN.value, poll_job_id("scan", rkey, poll.rkeys, claimed_at), (rkey,), poll.not_before)
    return JobSpec(Job.POLL_BATCH.value, poll_job_id("poll", poll.provider, poll.rkeys, claimed_at),
                   (list(poll.rkeys),), poll.not_before)


@dataclass(frozen=True, slots=True)
class ArqQueue:
    """tasks.enqueue.DeliveryQueue over ARQ: what the dispatcher and delivery batches enqueue."""

    redis: ArqRedis

    async def deliver(self, event_id: str, event_json: bytes, destination: str, *, attempts_before: int = 0,
                      defer_s: float | None = None) -> bool:
        return await enqueue_delivery(self.redis, event_id, event_json, destination,
                                      attempts_before=attempts_before, defer_s=defer_s)

    async def deliver_events(self, event_ids: Sequence[str], events_json: Sequence[bytes], destination: str) -> bool:
        return await enqueue_delivery_batch(self.redis, event_ids, events_json, destination)

    # tasks.circuit.CircuitQueue
    async def probe(self, destination: str, *, at: float, key: str) -> bool:
        return await enqueued(self.redis, Job.PROBE_DESTINATION.value, destination,
                              _job_id=f"circuit-probe:{destination}:{key}", _defer_until=_utc(at))

    async def flush(self, destination: str) -> bool:
        """Each call is a job of its own: the flush's lease lets one run at a time."""
        return await enqueued(self.redis, Job.FLUSH_DESTINATION.value, destination,
                              _job_id=f"circuit-flush:{destination}:{uuid.uuid4().hex}")

    async def hurry(self, destination: str) -> int:
        return await hurry_deliveries(self.redis, destination)

    async def retry_held(self, event_id: str, event_json: bytes, destination: str, *, attempts_before: int,
                         defer_s: float, round_key: str) -> bool:
        return await enqueued(self.redis, Job.DELIVER.value, event_json, destination, attempts_before,
                              _job_id=f"{delivery_job_id(event_id, destination)}:held:{round_key}",
                              _expires=DELIVER_EXPIRES, _defer_by=defer_s)


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


async def hurry_deliveries(redis: ArqRedis, destination: str) -> int:
    """Every `deliver` job of `destination` deferred to a later retry becomes due now (its
    score in ARQ's queue); returns how many. For a destination that answers again, or whose
    deliveries are being held: none waits out its schedule."""
    now_ms = int(time.time() * 1000)
    due: dict[str, int] = {}
    async for member, score in redis.zscan_iter(redis.default_queue_name, match="deliver:*", count=1000):
        job_id = member.decode() if isinstance(member, bytes) else str(member)
        tail = job_id.split(":", 2)[2] if job_id.count(":") >= 2 else ""
        if score > now_ms and (tail == destination or tail.startswith(f"{destination}:")):
            due[job_id] = now_ms
    if due:
        await redis.zadd(redis.default_queue_name, due, xx=True)
    return len(due)


def dispatcher_for(redis: ArqRedis, routes: Sequence[Route], consumer: str, *, enabled_destinations: set[str],
                   reclaim_idle: float = 30.0, clock: Callable[[], float] = time.time,
                   outage: OutageWatch | None = None, reminders: ReminderHooks | None = None,
                   time_intervals: Sequence[NamedTimeInterval] = (), history_length: int = 50) -> Dispatcher:
    """The dispatcher of one worker (`consumer`): the outbox and digest windows of `redis`,
    handing events on as jobs of this queue; its reminder hooks are store/reminders.py's
    unless `reminders` names others. Silences and the maintenance windows' held events are
    in `redis` too; `time_intervals` are the config's (the routes' windows name them)."""
    return Dispatcher(Outbox(redis), DigestBuffer(redis), ArqQueue(redis), routes, consumer,
                      enabled_destinations=enabled_destinations, reclaim_idle=reclaim_idle, clock=clock,
                      outage=outage,
                      reminders=reminders if reminders is not None else Reminders(redis, buffered=True),
                      mutes=mute_stores(redis, history_length), time_intervals=time_intervals)


def mute_stores(redis: ArqRedis, history_length: int = 50) -> MuteStores:
    """Where a dispatcher finds silences and keeps what it mutes (timeline notes of
    `history_length`, the config's `worker.history_length`)."""
    return MuteStores(SilenceCache(SilenceStore(redis)), WindowHold(redis),
                      MutedLog(redis, history_length=history_length), RecentEvents(redis))


# -- the bulk enqueue --------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """One job as `enqueue_job(function, *args, _job_id=job_id, _defer_until=…)` takes it;
    `not_before` is a Unix time (None: now)."""

    function: str
    job_id: str
    args: tuple[Any, ...] = ()
    not_before: float | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


async def enqueue_jobs(redis: ArqRedis, jobs: Sequence[JobSpec], *, queue: str | None = None) -> int:
    """Enqueues `jobs` on `queue` (the pool's default) in one script; returns how many were new."""
    if not jobs:
        return 0
    now_ms = int(time.time() * 1000)
    argv: list[Any] = [job_key_prefix, result_key_prefix]
    for job in jobs:
        score = now_ms if job.not_before is None else int(job.not_before * 1000)
        expires_ms = max(score, now_ms) - now_ms + redis.expires_extra_ms
        payload = serialize_job(job.function, job.args, job.kwargs, None, now_ms,
                                serializer=redis.job_serializer)
        argv += [job.job_id, score, expires_ms, payload]
    enqueue = redis.register_script(_ENQUEUE)
    return int(await enqueue(keys=[queue or redis.default_queue_name], args=argv))


# -- the pickup --------------------------------------------------------------------------------


async def not_running(worker: Worker, job_ids: list[bytes]) -> list[bytes]:
    """`job_ids` less the jobs this worker runs and those with an in-progress key."""
    ids = [j for j in job_ids if not _running_here(worker, j.decode())]
    if not ids:
        return ids
    async with worker.pool.pipeline(transaction=False) as pipe:
        for j in ids:
            pipe.exists(in_progress_key_prefix + j.decode())
        running = await pipe.execute()
    return [j for j, busy in zip(ids, running, strict=True) if not busy]


def _running_here(worker: Worker, job_id: str) -> bool:
    task = worker.tasks.get(job_id)
    return task is not None and not task.done()


def _running_ids(worker: Worker) -> list[str]:
    return [job_id for job_id, task in worker.tasks.items() if not task.done()]


def skip_running_jobs(worker: Worker, room: Callable[[Worker, str], int] | None = None,
                      pickup: Pickup | None = None) -> Worker:
    """Wraps this worker's `start_jobs` (an instance attribute: the worker stays the one
    `arq.worker.create_worker` made, which Sentry's integration may have wrapped). With
    `room`, the worker holds at most `room(worker, provider)` poll batches of a provider at a
    time (`fair_share`) and leaves the rest for the other workers; with `pickup`, the end of
    each poll batch it starts sets `pickup.woken`."""
    start: Callable[[list[bytes]], Awaitable[None]] = worker.start_jobs

    async def start_jobs(self: Worker, job_ids: list[bytes]) -> None:
        if room is not None:
            def of(provider: str) -> int:
                return room(self, provider)
            running = _running_ids(self)
            job_ids = fair_share(running, job_ids, of, count_taken=False)
            ids = fair_share(running, await not_running(self, job_ids), of)
        else:
            ids = await not_running(self, job_ids)
        if ids:
            try:
                await start(ids)
            except Exception:
                # ARQ takes a job's slot (its semaphore and count) before the Redis calls that
                # check the job, and gives it back only for the answers it expects: a failed
                # call (Redis killed, failing over) kept it, and max_jobs of them left the
                # worker taking no job again while its heartbeat said it was fine
                self.job_counter -= 1
                self.sem.release()
                raise
            if pickup is not None:
                pickup.watch(self, ids)

    worker.start_jobs = types.MethodType(start_jobs, worker)  # type: ignore[method-assign]
    return worker
