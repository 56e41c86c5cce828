"""What `statehook silence …` and /v1/silences do, written once: create (with its preview
and the match-everything refusal), list, extend, expire. Times are Unix seconds; each
refusal is a `SilenceRefused` with one line of reason and the HTTP status it answers."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

from core.silences import LATEST, Preview, mutes_everything, preview, range_problem, time_problem
from model.silences import Silence, SilenceMatch, SilenceState
from store.recent import RecentEvents
from store.silences import SilenceStore, new_silence_id

__all__ = ["Created", "SilenceRefused", "create_silence", "expire_silence", "extend_silence", "iso", "list_silences"]


class SilenceRefused(ValueError):
    """`needs_force`: it mutes everything (the caller says how to force it)."""

    def __init__(self, reason: str, status: int = 409, *, needs_force: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.needs_force = needs_force


_EARLIEST = datetime(1, 1, 1, tzinfo=UTC).timestamp()


def _shown_at(ts: float) -> float:
    """`ts` within datetime's range (a time past it, stored before create and extend refused
    one, is shown as the first or last second there is)."""
    return min(ts, LATEST) if ts >= _EARLIEST else _EARLIEST


def iso(ts: float) -> str:
    return datetime.fromtimestamp(_shown_at(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shown(silence: Silence) -> Silence:
    """`silence` with times that can be shown: one stored past datetime's range does not break
    a listing, and stays listed (so it can be expired)."""
    times = {"starts_at": silence.starts_at, "ends_at": silence.ends_at, "created_at": silence.created_at}
    within = {name: _shown_at(ts) for name, ts in times.items()}
    return silence if within == times else silence.model_copy(update=within)


def _time_refusal(what: str, starts_at: float, ends_at: float, now: float, max_duration: float) -> None:
    """SilenceRefused when these times cannot be a silence's: 409 for what the clock refuses,
    400 for a time past what can be shown (whatever the clock)."""
    problem = time_problem(starts_at, ends_at, now, max_duration)
    if problem is not None:
        raise SilenceRefused(f"{what}: {problem}", 400 if problem == range_problem(starts_at, ends_at) else 409)


@dataclass(frozen=True)
class Created:
    silence: Silence
    created: bool
    """False for a dry run"""
    preview: Preview
    needs_force: str | None
    """why it mutes everything (then it was created only with force)"""


async def create_silence(redis: aioredis.Redis, match: SilenceMatch, *, starts_at: float, ends_at: float,
                         author: str, comment: str, now: float, max_duration: float, destinations: Collection[str],
                         force: bool = False, dry_run: bool = False) -> Created:
    """The silence made (stored unless `dry_run`) and what it would have muted in the last
    24 h. Refused when its times are wrong, when it names a destination that is not one of
    `destinations` (it would mute nothing there), or when it mutes every recent event (or
    has no matcher) without `force`."""
    _time_refusal("cannot create the silence", starts_at, ends_at, now, max_duration)
    unknown = [d for d in match.destination or () if d not in destinations]
    if unknown:
        known = ", ".join(sorted(destinations)) or "none"
        raise SilenceRefused(f"cannot create the silence: no destination named {unknown[0][:64]!r} "
                             f"(configured: {known})")  # 409: well formed, but not for this configuration
    found = preview(match, [f async for f in RecentEvents(redis).since()])
    why = mutes_everything(match, found)
    if why is not None and not force and not dry_run:
        raise SilenceRefused(f"refused: {why}", needs_force=True)
    silence = Silence(id=new_silence_id(), match=match, starts_at=max(starts_at, now), ends_at=ends_at,
                      author=author, comment=comment, created_at=now)
    if not dry_run:
        await SilenceStore(redis).put(silence, now)
    return Created(silence, not dry_run, found, why)


async def _existing(store: SilenceStore, silence_id: str) -> Silence:
    found = await store.get(silence_id)
    if found is None:
        raise SilenceRefused(f"no silence {silence_id[:64]!r}", 404)
    return found


async def extend_silence(redis: aioredis.Redis, silence_id: str, ends_at: float, *, now: float,
                         max_duration: float) -> Silence:
    """The silence with its new end (later or sooner). An expired one is not revived: create another."""
    store = SilenceStore(redis)
    silence = await _existing(store, silence_id)
    if silence.state(now) is SilenceState.EXPIRED:
        raise SilenceRefused(f"silence {silence_id} has expired: create a new one")
    _time_refusal(f"cannot extend silence {silence_id}", silence.starts_at, ends_at, now, max_duration)
    changed = silence.model_copy(update={"ends_at": ends_at})
    await store.put(changed, now)
    return changed


async def expire_silence(redis: aioredis.Redis, silence_id: str, *, now: float) -> Silence:
    """The silence ended now (one already expired is left as it is)."""
    store = SilenceStore(redis)
    silence = await _existing(store, silence_id)
    if silence.state(now) is SilenceState.EXPIRED:
        return silence
    changed = silence.model_copy(update={"ends_at": now, "starts_at": min(silence.starts_at, now)})
    await store.put(changed, now)
    return changed


async def list_silences(redis: aioredis.Redis, *, now: float, states: set[SilenceState] | None = None) -> list[Silence]:
    """Oldest first; `states`: only those (None: all that are kept)."""
    return [_shown(s) for s in await SilenceStore(redis).all() if states is None or s.state(now) in states]
