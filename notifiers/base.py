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
from pydantic import BaseModel, ConfigDict, Field

from model.events import Event
from model.outcomes import Delivered
from model.values import RetrySchedule
from store.rates import RateSchedule
from store.slack import SlackThreads

__all__ = [
    "DEFAULT_SCHEDULE",
    "DestinationSettings",
    "Notifier",
    "NotifierContext",
]

DEFAULT_SCHEDULE: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
"""Seconds before retries 1..n (Svix's schedule after the immediate first try)."""


class DestinationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    retry_schedule: RetrySchedule = Field(
        default_factory=lambda: list(DEFAULT_SCHEDULE),
        description="seconds before each retry; its length is the number of retries",
    )
    jitter: float = Field(default=0.2, ge=0, le=1)
    enabled: bool = True


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
