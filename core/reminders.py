"""Reminders of critical states: what may arm one, when the next is due, and the reminder
event built from the event that armed it. Pure; the armed reminders are kept by
store/reminders.py and sent by tasks/reminders.py.

A reminder keeps the arming event's type, resource, seq, severity, tags, project and
snapshot, so that the routes that matched the arming event match it too and templates
render it the same way; its summary starts with "Reminder n:" and its data adds:

    reminder              n: 1 for the first reminder, 2 for the next, …
    reminder_of           the arming event's id
    reminder_since        when the arming event was detected
    reminder_route        the key of the route that asked for it (`repeat_every`)
    reminder_destination  the one destination it is for

Its id is new for every n and destination, and the same for the same n (a re-run of a
step makes the same event, which receivers drop by id)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from core.events import event_id, utc_iso
from model.events import Event, Severity
from model.operational import OPERATIONAL_PROVIDER

__all__ = [
    "MAX_ACK_AUTHOR",
    "MAX_ACK_COMMENT",
    "REMINDER",
    "ArmedReminder",
    "ack_problem",
    "can_arm",
    "is_reminder",
    "member_of",
    "next_due",
    "reminder_event",
    "reminder_id",
]

REMINDER = "reminder"
"""The data key that makes an event a reminder (its value: n)."""
MAX_ACK_AUTHOR = 200
MAX_ACK_COMMENT = 2000


@dataclass(frozen=True, slots=True)
class ArmedReminder:
    """One armed reminder: a resource, a route and one of its destinations, the state it
    reminds of, and what it has sent. `due` is when the next one is due (unix seconds)."""

    member: str
    rkey: str
    route: str
    destination: str
    state: str
    """the arming state ("": not known, when the arming event named none and none was seen)"""
    period: float
    sent: int
    seq: int
    event: bytes
    """the arming event's JSON"""
    armed_at: float
    due: float


def is_reminder(event: Event) -> bool:
    return REMINDER in event.data


def can_arm(event: Event) -> bool:
    """A critical event of a watched resource that is not itself a reminder. statehook's own
    operational events are not reminded of: their conditions report their own ends."""
    return (event.severity is Severity.CRITICAL and not is_reminder(event)
            and event.provider != OPERATIONAL_PROVIDER)


def member_of(rkey: str, route: str, destination: str) -> str:
    """The armed reminder's name: one per resource, route and destination."""
    basis = f"{rkey}\x00{route}\x00{destination}".encode()
    return "r-" + hashlib.blake2b(basis, digest_size=12).hexdigest()


def next_due(due: float, period: float, now: float) -> float:
    """The first time after `now` on the grid `due + k * period` (k ≥ 1): a step that comes
    late (workers down for hours) sends one reminder, not one per missed period, and the
    reminders keep their rhythm."""
    if period <= 0:
        raise ValueError("a reminder period is positive")
    k = max(1, math.floor((now - due) / period) + 1)
    return due + k * period


def reminder_id(arming_id: str, rkey: str, seq: int, event_type: str, route: str, destination: str, n: int) -> str:
    return event_id(rkey, seq, event_type, f"reminder\x00{arming_id}\x00{route}\x00{destination}\x00{n}")


def reminder_event(arming: Event, *, n: int, route: str, destination: str, now: float) -> Event:
    """Reminder `n` of `arming` for `destination` (see the module's docstring)."""
    data = {
        **arming.data,
        REMINDER: n,
        "reminder_of": arming.id,
        "reminder_since": arming.detected_at,
        "reminder_route": route,
        "reminder_destination": destination,
    }
    return Event(
        id=reminder_id(arming.id, arming.rkey, arming.seq, arming.type, route, destination, n),
        type=arming.type,
        provider=arming.provider,
        resource=arming.resource,
        seq=arming.seq,
        detected_at=utc_iso(now),
        severity=arming.severity,
        summary=f"Reminder {n}: {arming.summary}",
        data=data,
        snapshot=arming.snapshot,
        tags=arming.tags,
        project=arming.project,
    )


def ack_problem(author: str, comment: str) -> str | None:
    """Why an acknowledgement's author or comment is refused, or None."""
    if not author.strip():
        return "the author is empty"
    if len(author) > MAX_ACK_AUTHOR:
        return f"the author is longer than {MAX_ACK_AUTHOR} characters"
    if len(comment) > MAX_ACK_COMMENT:
        return f"the comment is longer than {MAX_ACK_COMMENT} characters"
    return None
