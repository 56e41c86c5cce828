"""What the orchestration asks of the job queue, without knowing the queue: the dispatcher and
a delivery batch hand events on as jobs through this Protocol; worker/queue.py implements it
over ARQ (job names, ids, expiry and arguments are its business)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["DeliveryQueue"]


class DeliveryQueue(Protocol):
    async def deliver(self, event_id: str, event_json: bytes, destination: str, *, attempts_before: int = 0,
                      defer_s: float | None = None) -> bool:
        """One event to one destination as a job of its own, retried on the destination's
        schedule; `attempts_before`: attempts already made (the next is numbered after them);
        `defer_s`: not before this many seconds. False if a job of that event and destination
        is queued, running or recently done (it is not enqueued twice)."""
        ...

    async def deliver_events(self, event_ids: Sequence[str], events_json: Sequence[bytes], destination: str) -> bool:
        """First attempts of these events (in outbox order) to one destination, as one batch
        job. False if the same batch is queued, running or recently done."""
        ...
