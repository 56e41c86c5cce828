"""Console: one readable line per event on standard output. For development and the demo."""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import Field

from model.events import Event, Severity
from model.outcomes import Delivered
from model.values import RetrySchedule
from notifiers.base import DestinationSettings, Notifier

__all__ = ["ConsoleNotifier", "ConsoleSettings", "format_line"]

_MARK = {Severity.INFO: "·", Severity.WARNING: "!", Severity.CRITICAL: "✖"}


class ConsoleSettings(DestinationSettings):
    kind: Literal["console"] = "console"
    retry_schedule: RetrySchedule = Field(default_factory=list)


def format_line(event: Event) -> str:
    return (
        f"{event.detected_at} {_MARK[event.severity]} {event.severity.value:<8} "
        f"{event.type:<40} {event.resource.get('key')} #{event.seq}  {event.summary}"
    )


class ConsoleNotifier(Notifier):
    kind = "console"
    settings_model = ConsoleSettings

    async def send(self, event: Event) -> Delivered:
        print(format_line(event), file=sys.stdout, flush=True)
        return Delivered()
