"""Which poll batches a worker takes while other workers are live, and the wake at the end of
one (worker/queue.py's pickup uses them; the reason is in its docstring). Pure but `Pickup`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from arq.worker import Worker

__all__ = ["POLL_PREFIX", "Pickup", "fair_share", "poll_room"]

POLL_PREFIX = "poll:"
"""How a poll batch's job id starts (`poll_job_id`): `poll:{provider}:…`."""


def poll_room(share: int, batch_size: int) -> int:
    """How many poll batches of one provider a worker holds at a time: as many as its share of
    the provider's concurrency can work on at once, and one more to start while the last
    commits. Pure."""
    return -(-max(1, share) // max(1, batch_size)) + 1


def _poll_provider(job_id: str) -> str | None:
    return job_id.split(":", 2)[1] if job_id.startswith(POLL_PREFIX) and job_id.count(":") >= 2 else None


def fair_share(running: Sequence[str], job_ids: list[bytes], room: Callable[[str], int], *,
               count_taken: bool = True) -> list[bytes]:
    """`job_ids` less the poll batches of each provider beyond its `room`, for a worker that
    runs `running`; the other jobs are kept. With `count_taken=False` only the batches of the
    providers already at their room are left out (before the EXISTS check, which costs a
    command per id). Pure."""
    held: dict[str, int] = {}
    for job_id in running:
        provider = _poll_provider(job_id)
        if provider is not None:
            held[provider] = held.get(provider, 0) + 1
    out = []
    for raw in job_ids:
        provider = _poll_provider(raw.decode(errors="replace"))
        if provider is not None:
            if held.get(provider, 0) >= room(provider):
                continue
            if count_taken:
                held[provider] = held.get(provider, 0) + 1
        out.append(raw)
    return out


class Pickup:
    """Set when one of this worker's poll batches ends: its loop looks for the next job at once."""

    def __init__(self) -> None:
        self.woken = asyncio.Event()

    def watch(self, worker: Worker, job_ids: Sequence[bytes]) -> None:
        """Wake the loop when any of the poll batches among `job_ids` that now run here ends."""
        for raw in job_ids:
            job_id = raw.decode(errors="replace")
            task = worker.tasks.get(job_id)
            if task is None or not job_id.startswith(POLL_PREFIX):
                continue
            if task.done():  # ended while ARQ was still starting the others
                self.woken.set()
            else:
                task.add_done_callback(self._wake)

    def _wake(self, _: object) -> None:
        self.woken.set()
