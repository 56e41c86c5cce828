"""The armed reminders (core/reminders.py) and the acknowledgements, in Redis; the dispatcher's
reminder hooks (`arm`, `seen`: tasks/dispatch.py's ReminderHooks) and what the periodic step
(tasks/reminders.py) and `statehook ack` / `POST /v1/resources/{rkey}/ack` call.

Keys (store/keys.py): `sh:rem:due` (ZSET: armed reminder -> when the next is due), one HASH per
armed reminder (`sh:rem:r:{member}`: rkey, route, destination, state, period, sent, seq, the
arming event), one SET per resource of its armed reminders (`sh:rem:k:{rkey}`), one HASH per
acknowledged resource (`sh:rem:ack:{rkey}`: state, author, comment, at) and `sh:rem:seen`
(rkey -> the seq and state of its last state event, or that it is gone).

Every change is one Lua script (store/lua/reminder_*.lua), so that workers racing on one
resource agree: a reminder is sent once per period (the send is guarded by the count its
claim read), an acknowledgement and a send cannot both win, and an event read late (an
outbox entry reclaimed after a newer one was handled) neither re-arms nor disarms."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from core.reminders import ArmedReminder, can_arm, is_reminder, member_of
from model.events import Event
from model.operational import OPERATIONAL_PROVIDER
from store import keys, scripts
from store.history import note_entry
from store.stats import StatsRecorder

__all__ = ["DEFAULT_LEASE", "Ack", "AckResult", "Fired", "Reminders"]

DEFAULT_LEASE = 30.0
"""Seconds a claimed reminder is held by the step that claimed it; a step that died lets
another take it after this (the count guard keeps it from being sent twice)."""
_FIELDS = ("rkey", "route", "destination", "state", "period", "sent", "seq", "event", "armed_at")


class Fired(enum.StrEnum):
    """What became of a claimed reminder."""

    SENT = "sent"
    CHANGED = "changed"            # the resource left the arming state (seen by the step)
    GONE = "gone"
    ACKNOWLEDGED = "acknowledged"
    UNWATCHED = "unwatched"
    LOST = "lost"                  # the resource's state record is gone
    DISARMED = "disarmed"          # disarmed meanwhile (a state change, an ack)
    RACED = "raced"                # another step sent it meanwhile
    DROPPED = "dropped"            # its route or destination left the config, or its record is unreadable


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledgement of a resource's state."""

    state: str
    author: str
    comment: str
    at: float


@dataclass(frozen=True, slots=True)
class AckResult:
    """`stopped` reminders disarmed (0: nothing was armed); `known` False: no such resource."""

    known: bool
    stopped: int = 0
    state: str | None = None
    previous: Ack | None = None
    """when nothing was armed: the acknowledgement already in place, if any"""


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _record(member: str, due: float, fields: Sequence[bytes | None]) -> ArmedReminder | None:
    """A record as stored (`_FIELDS` order); None for one that cannot be read."""
    try:
        rkey, route, dest, state, period, sent, seq, event, armed_at = fields
        return ArmedReminder(member=member, rkey=_text(rkey), route=_text(route), destination=_text(dest),
                             state=_text(state), period=float(_text(period)), sent=int(_text(sent)),
                             seq=int(_text(seq)), event=event if isinstance(event, bytes) else _text(event).encode(),
                             armed_at=float(_text(armed_at)), due=due)
    except (TypeError, ValueError):
        return None


class Reminders:
    def __init__(self, redis: aioredis.Redis, *, history_length: int = 50, lease: float = DEFAULT_LEASE,
                 buffered: bool = False) -> None:
        """`buffered`: `arm` and `seen` only queue their scripts, and `flush` sends what was
        queued in one round trip, in order; for a dispatcher that flushes before it
        acknowledges what it read (a crash before that replays the read, and both are
        idempotent). Unbuffered, each is a round trip of its own."""
        self.redis = redis
        self.history_length = history_length
        self.lease = lease
        self.buffered = buffered
        self._pending: list[tuple[AsyncScript, list[str], list[Any]]] = []
        self._arm = scripts.register(redis, "reminder_arm")
        self._seen = scripts.register(redis, "reminder_seen")
        self._claim = scripts.register(redis, "reminder_claim")
        self._fire = scripts.register(redis, "reminder_fire")
        self._ack = scripts.register(redis, "reminder_ack")

    # ---- the dispatcher's hooks -------------------------------------------------------------

    async def arm(self, event: Event, route: str, destination: str, period: float, now: float) -> None:
        """`event` was delivered to `destination` through `route` (its key), whose
        `repeat_every` is `period`: remind it of the event's state every period, from now.
        A reminder already armed for that state keeps its count; an acknowledged state, a
        resource gone since, or an event older than the resource's last state change arms
        nothing."""
        if not can_arm(event) or period <= 0:
            return
        rkey, member = event.rkey, member_of(event.rkey, route, destination)
        state = event.target_state
        await self._call(
            self._arm,
            [keys.reminder_record(member), keys.REMINDER_DUE, keys.reminders_of(rkey), keys.reminder_ack(rkey),
             keys.REMINDER_SEEN],
            [member, rkey, "0" if state is None else "1", state or "", event.seq, repr(float(period)),
             repr(now + period), event.to_json(), route, destination, repr(now), watched_by(event)],
        )

    async def seen(self, event: Event) -> None:
        """`event` says where its resource is now (a target state, or gone): its reminders
        of any other state are disarmed, an acknowledgement of another state forgotten. A
        reminder tells nothing new (it repeats its arming event's state)."""
        if event.provider == OPERATIONAL_PROVIDER or is_reminder(event):
            return
        gone = event.type.endswith(".gone")
        state = event.target_state
        if not gone and state is None:
            return
        rkey, kind = event.rkey, "g" if gone else "s"
        await self._call(self._seen,
                         [keys.reminders_of(rkey), keys.REMINDER_SEEN, keys.reminder_ack(rkey), keys.REMINDER_DUE],
                         [rkey, event.seq, kind, "" if gone else state or "", keys.REMINDER_RECORD])

    async def flush(self) -> None:
        """Send what `arm` and `seen` queued (buffered), in order, in one round trip."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for script, script_keys, args in pending:
                await script(keys=script_keys, args=args, client=pipe)
            await pipe.execute()

    async def _call(self, script: AsyncScript, script_keys: list[str], args: list[Any]) -> None:
        if self.buffered:
            self._pending.append((script, script_keys, args))
        else:
            await script(keys=script_keys, args=args)

    # ---- the periodic step ------------------------------------------------------------------

    async def claim(self, now: float, limit: int = 500) -> list[ArmedReminder | str]:
        """The reminders due by `now`, each leased for `lease` seconds to this caller (a
        member name instead of a record: one that cannot be read)."""
        raw = await self._claim(keys=[keys.REMINDER_DUE], args=[repr(now), repr(now + self.lease), limit,
                                                                  keys.REMINDER_RECORD])
        out: list[ArmedReminder | str] = []
        width = 2 + len(_FIELDS)
        for i in range(0, len(raw), width):
            member = _text(raw[i])
            record = _record(member, float(_text(raw[i + 1])), raw[i + 2 : i + width])
            out.append(record if record is not None else member)
        return out

    async def fire(self, armed: ArmedReminder, reminder: Event, *, next_due: float, now: float) -> Fired:
        """Send `reminder` (append it to the outbox, with its timeline note and count) and
        arm the next at `next_due`; or disarm `armed` when its resource left the arming state,
        was acknowledged, unwatched, or lost its state record. One script."""
        rkey = armed.rkey
        n = armed.sent + 1
        note = note_entry("reminder", now, f"reminder {n} to {armed.destination}: {armed.state or reminder.summary}",
                          seq=armed.seq, event_id=str(reminder.data.get("reminder_of", "")),
                          data={"reminder": n, "id": reminder.id, "destination": armed.destination,
                                "route": armed.route, "state": armed.state})
        recorder = StatsRecorder()
        recorder.reminder(armed.destination)
        (stat,) = recorder.drain()
        outcome = await self._fire(
            keys=[keys.reminder_record(armed.member), keys.REMINDER_DUE, keys.reminders_of(rkey),
                  keys.reminder_ack(rkey), keys.REMINDER_SEEN, keys.STATE, keys.META, keys.OUTBOX,
                  keys.snapshot(rkey), keys.old_timeline(rkey), keys.STATS],
            args=[armed.member, rkey, armed.sent, armed.state, repr(next_due), reminder.to_json(), note,
                  self.history_length, stat],
        )
        return Fired(_text(outcome))

    async def drop(self, armed: ArmedReminder | str) -> None:
        """Disarm one reminder (its route left the config, its record cannot be read)."""
        member = armed if isinstance(armed, str) else armed.member
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.reminder_record(member))
            pipe.zrem(keys.REMINDER_DUE, member)
            if not isinstance(armed, str):
                pipe.srem(keys.reminders_of(armed.rkey), member)
            await pipe.execute()

    # ---- reading, acknowledging ---------------------------------------------------------------

    async def armed(self, rkey: str) -> list[ArmedReminder]:
        """The reminders armed for `rkey`, the next due first."""
        members = sorted(_text(m) for m in await self.redis.smembers(keys.reminders_of(rkey)))  # type: ignore[misc]
        if not members:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for m in members:
                pipe.hmget(keys.reminder_record(m), list(_FIELDS))
            pipe.zmscore(keys.REMINDER_DUE, members)
            *records, dues = await pipe.execute()
        out = [_record(m, float(due), fields) for m, fields, due in zip(members, records, dues, strict=True)
               if due is not None and fields[0] is not None]
        return sorted((r for r in out if r is not None), key=lambda r: r.due)

    async def acknowledgement(self, rkey: str) -> Ack | None:
        raw = await self.redis.hgetall(keys.reminder_ack(rkey))  # type: ignore[misc]
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        try:
            return Ack(fields.get("state", ""), fields.get("author", ""), fields.get("comment", ""),
                       float(fields.get("at") or 0))
        except ValueError:
            return None

    async def known(self, rkey: str) -> bool:
        """Whether statehook knows the resource: watched, or polled once."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hexists(keys.META, rkey)
            pipe.hexists(keys.STATE, rkey)
            watched, polled = await pipe.execute()
        return bool(watched or polled)

    async def current_state(self, rkey: str, armed: Sequence[ArmedReminder]) -> str | None:
        """The resource's state as its last state event told it, if a reminder is armed for
        it; else the state of the reminder armed last. None when nothing is armed."""
        if not armed:
            return None
        seen = _text(await self.redis.hget(keys.REMINDER_SEEN, rkey))  # type: ignore[misc]
        _seq, kind, state = [*seen.split("|", 2), "", ""][:3]
        if kind == "s" and any(r.state == state for r in armed):
            return state
        return max(armed, key=lambda r: r.armed_at).state

    async def ack(self, rkey: str, *, author: str, comment: str, now: float) -> AckResult:
        """Acknowledge `rkey`'s current state: its reminders of that state stop, a later
        critical event in the same state arms none, a change of state forgets the ack. Noted
        in its timeline (kind "acknowledged")."""
        if not await self.known(rkey):
            return AckResult(known=False)
        for _ in range(3):  # a state change between the read and the script: read again
            armed = await self.armed(rkey)
            state = await self.current_state(rkey, armed)
            if state is None:
                return AckResult(known=True, previous=await self.acknowledgement(rkey))
            of_state = [r for r in armed if r.state == state]
            first = min(of_state, key=lambda r: r.armed_at)
            arming_id = _arming_id(first)
            text = f"acknowledged by {author}" + (f": {comment}" if comment else "")
            note = note_entry("acknowledged", now, text, seq=first.seq, event_id=arming_id,
                              data={"author": author, "comment": comment, "state": state,
                                    "reminders": len(of_state)})
            stopped = int(await self._ack(
                keys=[keys.reminders_of(rkey), keys.reminder_ack(rkey), keys.REMINDER_DUE, keys.snapshot(rkey),
                      keys.old_timeline(rkey)],
                args=[state, author, comment, repr(now), note, self.history_length, keys.REMINDER_RECORD]))
            if stopped:
                return AckResult(known=True, stopped=stopped, state=state)
        return AckResult(known=True, previous=await self.acknowledgement(rkey))


def _arming_id(armed: ArmedReminder) -> str:
    try:
        return Event.from_json(armed.event).id
    except Exception:  # a record written by something else: the note names no event
        return ""


def watched_by(event: Event) -> str:
    """The rkey of the watch a reminder lasts for: the scan that found the resource (an order
    of a scan has no watch of its own), else the resource's own."""
    scan = event.resource.get("scan")
    return scan if isinstance(scan, str) and scan else event.rkey
