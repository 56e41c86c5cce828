"""A poll batch's writes, applied in one round trip (`Store.commit`).

Each resource's outcome is one `Commit`, applied atomically by lua/commit_poll.lua:
its state record, snapshot, due time, events and timeline entries, guarded by the state
record the poll read and by the dataset's epoch. The cheap updates of the batch (due
times of unchanged resources, error counters, provider health) go in the same pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from core.due import Due, DueAt, KeepDue, StopPolling
from model.events import Event
from model.resources import ResourceRef
from store import keys
from store.history import history_entry
from store.records import ResourceState, encode_state

__all__ = ["Commit", "queue_commit", "queue_updates"]


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


async def queue_commit(script: AsyncScript, pipe: Pipeline, commit: Commit, *, history_length: int,
                       epoch: str | None) -> None:
    """Queue `commit` on `pipe`; its reply is 1 when it was made, 0 when it was refused."""
    rkey = commit.ref.key
    await script(
        keys=[keys.STATE, keys.snapshot(rkey), keys.OUTBOX, keys.DUE, keys.history(rkey), keys.EPOCH],
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
    unhealthy: Mapping[str, str],
    healthy: Iterable[str],
) -> None:
    """Queue the batch's cheap updates: due times of resources already watched, error
    counters, and provider health (`unhealthy` wins over `healthy`)."""
    if reschedule:
        pipe.zadd(keys.DUE, dict(reschedule), xx=True)
    if clear_errors:
        pipe.hdel(keys.ERRORS, *clear_errors)
    for rkey in errors:
        pipe.hincrby(keys.ERRORS, rkey, 1)
    if unhealthy:
        pipe.hset(keys.PROVIDER_HEALTH, mapping=dict(unhealthy))
    recovered = set(healthy) - set(unhealthy)
    if recovered:
        pipe.hdel(keys.PROVIDER_HEALTH, *recovered)
