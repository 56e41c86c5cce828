"""The interface every destination implements.

A notifier sends one event once. It reports a transient failure (retry later, maybe at a
time the destination asked for) or a permanent one (dead-letter with the reason) by
raising; the delivery job decides what happens next.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.circuit import CircuitPolicy
from model.events import Event
from model.outcomes import Delivered
from model.values import MAX_RETRY_SPAN, Duration, RetrySchedule, format_seconds
from store.rates import RateSchedule
from store.slack import SlackThreads

__all__ = [
    "DEFAULT_SCHEDULE",
    "CircuitSettings",
    "DestinationSettings",
    "Notifier",
    "NotifierContext",
]

DEFAULT_SCHEDULE: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
"""Seconds before retries 1..n (Svix's schedule after the immediate first try)."""


class CircuitSettings(BaseModel):
    """`[destinations.NAME.circuit]`: when the destination counts as down (its deliveries are
    then held, without spending their tries, and one probe goes out on a backoff) and how long
    a delivery may wait (core/circuit.py)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="false: every delivery follows its own retry schedule")
    failures: int = Field(default=5, ge=1, le=10_000, description="consecutive outage failures that open it")
    failure_rate: float = Field(default=0.5, gt=0, le=1,
                                description="or this share of failed attempts within `window`...")
    window: Duration = Field(default=60.0, description="...counted from the first failure...")
    min_requests: int = Field(default=20, ge=1, le=1_000_000,
                              description="...once the window holds this many attempts")
    probe_after: Duration = Field(default=1.0, description="the first probe; each failed one doubles the wait...")
    probe_max: Duration = Field(default=3.0,
                                description="...up to this: a recovered destination waits at most this long")
    max_hold: Duration = Field(default=3 * 86400.0, description="a delivery held longer is dead-lettered")

    @model_validator(mode="after")
    def _probe_bounds(self) -> CircuitSettings:
        if self.probe_max < self.probe_after:
            raise ValueError("`probe_max` must not be shorter than `probe_after`")
        return self

    def policy(self) -> CircuitPolicy:
        return CircuitPolicy(self.enabled, self.failures, self.failure_rate, self.window, self.min_requests,
                             self.probe_after, self.probe_max, self.max_hold)


class DestinationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    retry_schedule: RetrySchedule = Field(
        default_factory=lambda: list(DEFAULT_SCHEDULE),
        description="seconds before each retry; its length is the number of retries",
    )
    jitter: float = Field(default=0.2, ge=0, le=1)
    enabled: bool = True
    circuit: CircuitSettings = Field(default_factory=CircuitSettings)

    def send_limit(self) -> float | None:
        """How long one send may take in all: the kind's `timeout` (None for a kind without
        one); a paced kind adds the wait for its slot it spends inside the send."""
        timeout = getattr(self, "timeout", None)
        return None if timeout is None else float(timeout)

    @model_validator(mode="after")
    def _retries_within_the_job(self) -> DestinationSettings:
        span = sum(self.retry_schedule) * (1 + self.jitter)
        if span > MAX_RETRY_SPAN:
            raise ValueError(f"`retry_schedule` adds up to {format_seconds(span)} with its jitter, more than "
                             f"{format_seconds(MAX_RETRY_SPAN)}: a delivery job expires 3 days after it was queued")
        return self


@dataclass(slots=True)
class NotifierContext:
    """What a notifier may use: the shared HTTP session, and the store's objects for what
    workers share (without them a notifier keeps no such state: no pacing, no threads)."""

    session: aiohttp.ClientSession
    rates: RateSchedule | None = None
    slack_threads: SlackThreads | None = None


class Notifier(ABC):
    kind: ClassVar[str]
    settings_model: ClassVar[type[DestinationSettings]]

    def __init__(self, name: str, settings: DestinationSettings, ctx: NotifierContext) -> None:
        self.name = name
        self.settings = settings
        self.ctx = ctx

    @abstractmethod
    async def send(self, event: Event) -> Delivered:
        """Deliver once. Raise TransientFailure or PermanentFailure otherwise."""

    async def close(self) -> None:
        """Release what the notifier holds beyond the shared session."""
