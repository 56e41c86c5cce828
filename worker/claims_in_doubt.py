"""The scheduler's claims whose outcome this process does not know.

A claim (`Store.claim_due_times`) leases what is due, and the tick then enqueues its poll
jobs. When Redis fails in between, or hangs (a SIGSTOP, a stalled master), the tick gives
up without knowing whether the claim was made: a hung Redis runs the commands sent to it
once it resumes, though the client that sent them has long timed out. A claim made so
leaves its resources leased, with no job to poll them, for the whole `poll_lease`. Each
claim's lease is a score no other claim writes (`store.snapshots.lease_until`), so the
process keeps the lease of every tick that Redis failed or hung on and, at its next tick
or when Redis answers again, makes whatever still holds that lease due at once
(`Store.release_lease`). A claim that was never made releases nothing; one whose jobs were
enqueued after all gets polled twice, which a poll's guarded commit makes harmless.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from store.snapshots import Store
from store.unavailable import is_redis_down

__all__ = ["ClaimsInDoubt"]

log = logging.getLogger("statehook.scheduler")


class ClaimsInDoubt:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._leases: set[float] = set()

    @property
    def leases(self) -> frozenset[float]:
        return frozenset(self._leases)

    @contextlib.contextmanager
    def claiming(self, leased_until: float) -> Iterator[None]:
        """Around a claim and the enqueue of its jobs: in doubt when either failed because
        Redis was down or hung (a claim in flight is not, so that a release running beside it
        leaves it alone). Any other failure is not Redis losing an answer: it would only fail
        again, so its resources wait out their lease as before."""
        try:
            yield
        except Exception as exc:
            if is_redis_down(exc):
                self._leases.add(leased_until)
            raise

    async def release(self, now: float) -> int:
        """Make what the claims in doubt leased due at `now`; returns how many. A lease
        stays in doubt while Redis fails this too."""
        released = 0
        for leased_until in sorted(self._leases):
            released += await self.store.release_lease(leased_until, now)
            self._leases.discard(leased_until)
        if released:
            log.warning("%d resources claimed by a scheduler tick whose answer Redis lost are due again", released)
        return released
