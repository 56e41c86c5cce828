"""A poll batch's writes, applied in one round trip (`Store.commit`).

Each resource's outcome is one `Commit`, applied atomically by lua/commit_poll.lua:
its state record, snapshot, due time, events and timeline entries, guarded by the state
record the poll read and by the dataset's epoch. The cheap updates of the batch (due
times of unchanged resources, error counters, provider health, that its resources were
polled, the ids a scan's page listed) go in the same pipeline.

A provider's health is kept across workers: why it is unhealthy (`sh:provider_health`,
what /healthz reads), its consecutive failed polls and since when it answers 429, each
cleared when a poll is answered. The replies say what the watchdog (tasks/watchdog.py)
decides on: how many polls have failed in a row, since when it is rate-limited, and
whether a provider marked unhealthy has just been answered again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from core.due import Due, DueAt, DueSoon, KeepDue, StopPolling
from model.events import Event
from model.resources import ResourceRef
from store import keys, sweeps
from store.history import history_entry
from store.records import ResourceState, encode_state

__all__ = ["BatchHealth", "Commit", "HealthReplies", "queue_commit", "queue_health", "queue_updates", "read_health"]


@dataclass(slots=True)
class Commit:
    ref: ResourceRef
    expected: ResourceState | None
    """the state record the poll read (None: it read none); the commit is made only if
    it is still the stored one"""
    new: ResourceState
    snapshot: bytes
    """packed (`store.history.pack_snapshot`)"""
    due: Due
    events: list[Event]


def _due_args(due: Due) -> tuple[str, str]:
    match due:
        case DueAt(at):
            return "at", repr(at)
        case StopPolling():
            return "stop", ""
        case KeepDue():
            return "keep", ""
        case DueSoon(at):
            return "soon", repr(at)


async def queue_commit(script: AsyncScript, pipe: Pipeline, commit: Commit, *, history_length: int,
                       epoch: str | None) -> None:
    """Queue `commit` on `pipe`; its reply is 1 when it was made, 0 when it was refused."""
    rkey = commit.ref.key
    await script(
        keys=[keys.STATE, keys.snapshot(rkey), keys.OUTBOX, keys.DUE, keys.old_timeline(rkey), keys.EPOCH, keys.META],
        args=[
            rkey,
            encode_state(commit.expected) if commit.expected else "",
            encode_state(commit.new),
            commit.snapshot,
            *_due_args(commit.due),
            history_length,
            len(commit.events),
            *[e.to_json() for e in commit.events],
            *[history_entry(rkey, e) for e in commit.events],
            "*" if epoch is None else epoch,
        ],
        client=pipe,
    )


def queue_updates(
    pipe: Pipeline,
    *,
    reschedule: Mapping[str, float],
    clear_errors: Sequence[str],
    errors: Sequence[str],
    polled: Sequence[str] = (),
    listed: Sequence[tuple[str, Sequence[str]]] = (),
    booked: Mapping[str, float] | None = None,
    unbooked: Sequence[str] = (),
) -> None:
    """Queue the batch's cheap updates: due times of resources already watched, error
    counters, the resources no longer late (`sh:late`: they were polled), the ids each
    scan's page listed (added to the scan's sweep in progress) and the rate slots booked
    and used up (tasks/rate_slots.py)."""
    if reschedule:
        pipe.zadd(keys.DUE, dict(reschedule), xx=True)
    if clear_errors:
        pipe.hdel(keys.ERRORS, *clear_errors)
    for rkey in errors:
        pipe.hincrby(keys.ERRORS, rkey, 1)
    if polled:
        pipe.zrem(keys.LATE, *polled)
    for scan, ids in listed:  # an entry per page
        if ids:
            pipe.rpush(keys.sweep(scan, "cur"), sweeps.entry(ids))
    if unbooked:
        pipe.hdel(keys.BOOKED, *unbooked)
    if booked:
        pipe.hset(keys.BOOKED, mapping={k: repr(v) for k, v in booked.items()})


@dataclass(slots=True)
class BatchHealth:
    """What a batch saw of its providers' health (tasks/poll_plan.py gathers it)."""

    answered: set[str] = field(default_factory=set)
    """providers that answered a poll"""
    unauthorized: dict[str, str] = field(default_factory=dict)
    """providers that refused the credentials, and how"""
    failed: Counter[str] = field(default_factory=Counter)
    """failed polls per provider (not a 404, a 401 or a 429)"""
    last_error: dict[str, str] = field(default_factory=dict)
    """the last failed poll's reason, per provider"""
    limited: dict[str, float] = field(default_factory=dict)
    """providers rate-limited, and for how many seconds more every worker leaves them alone"""

    def __bool__(self) -> bool:
        return bool(self.answered or self.unauthorized or self.failed or self.limited)

    def clear(self) -> None:
        for table in (self.answered, self.unauthorized, self.failed, self.last_error, self.limited):
            table.clear()


@dataclass(slots=True)
class HealthReplies:
    recovered: set[str] = field(default_factory=set)
    """providers marked unhealthy that were answered again (their mark is cleared)"""
    failed_polls: dict[str, int] = field(default_factory=dict)
    """consecutive failed polls, across workers, of providers that answered none"""
    limited_since: dict[str, float] = field(default_factory=dict)
    """since when each rate-limited provider has answered 429 and nothing else"""


def queue_health(pipe: Pipeline, health: BatchHealth, now: float) -> list[tuple[str, str]]:
    """Queue the health updates; returns what each queued command's reply says (`read_health`).
    An answer clears a provider's failed polls, and, unless it also refused the credentials
    or answered 429, its rate-limit start and its unhealthy mark (`unauthorized` wins)."""
    tags: list[tuple[str, str]] = []
    if health.unauthorized:
        pipe.hset(keys.PROVIDER_HEALTH, mapping=dict(health.unauthorized))
        tags.append(("", ""))
    for provider in sorted(health.answered | set(health.failed) | set(health.limited)):
        if provider in health.answered:
            pipe.hdel(keys.PROVIDER_FAILS, provider)
            tags.append(("", ""))
            if provider not in health.unauthorized and provider not in health.limited:
                pipe.hdel(keys.PROVIDER_LIMITED, provider)
                pipe.hdel(keys.PROVIDER_HEALTH, provider)
                tags += [("", ""), (provider, "recovered")]
        elif health.failed[provider]:
            pipe.hincrby(keys.PROVIDER_FAILS, provider, health.failed[provider])
            tags.append((provider, "failed_polls"))
        if provider in health.limited:
            pipe.hsetnx(keys.PROVIDER_LIMITED, provider, repr(now))
            pipe.hget(keys.PROVIDER_LIMITED, provider)
            tags += [("", ""), (provider, "limited_since")]
    return tags


def read_health(tags: Sequence[tuple[str, str]], replies: Sequence[Any]) -> HealthReplies:
    out = HealthReplies()
    for (provider, what), reply in zip(tags, replies, strict=True):
        if what == "recovered" and reply:
            out.recovered.add(provider)
        elif what == "failed_polls":
            out.failed_polls[provider] = int(reply)
        elif what == "limited_since" and reply is not None:
            out.limited_since[provider] = float(reply)
    return out
