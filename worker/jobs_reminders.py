"""The reminders' job: `send_reminders`, an ARQ cron every REMINDER_TICK seconds with
`unique=True` (worker/settings.py registers it). Thin: the step is tasks/reminders.py; the
claim it makes is atomic, so two workers' steps that race send each reminder once."""

from __future__ import annotations

from typing import Any

from store.reminders import Fired, Reminders
from tasks.reminders import REMINDER_TICK, ReminderStep
from worker.jobs import JobContext

__all__ = ["REMINDER_SECONDS", "send_reminders"]

REMINDER_SECONDS = set(range(0, 60, int(REMINDER_TICK)))
"""The seconds of each minute the cron runs at."""


async def send_reminders(ctx: dict[str, Any]) -> int:
    """Send the reminders that are due; returns how many were sent. While Redis is down a
    tick does nothing: the next one tries again (what was due is still due)."""
    rt = JobContext.of(ctx).rt
    step = ReminderStep(Reminders(rt.redis, history_length=rt.config.settings.worker.history_length),
                        rt.config.routes)
    try:
        return (await step.step())[Fired.SENT]
    except Exception as exc:
        if not rt.outage_of(exc, "reminders"):
            raise
        return 0
