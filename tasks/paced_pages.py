"""A scan's pages, each requested in a slot of its provider's rate schedule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from model.errors import RateLimited
from model.resources import ScanPage
from providers.base import Provider
from store.rates import ProviderLimits, Reservation

__all__ = ["paced"]


async def paced(limits: ProviderLimits, provider: Provider, pages: AsyncIterator[ScanPage]) -> AsyncIterator[ScanPage]:
    """`pages`, each requested in a slot of the provider's shared schedule, as its resources'
    fetches are: unpaced, a 50-page sweep at 20 requests/s asked for them as fast as they
    came and drew 429s. The next page's slot is reserved while this page is fetched, so that
    its round trip to Redis is not on the sweep's path (a page's token names the next, so
    the pages themselves come one after the other); the slots taken for the step that ends
    the scan (after the last page) send nothing. A page is not asked for while the provider
    is paused (a 429 another worker met): the sweep ends as if this one had met it."""
    it = aiter(pages)

    def reserve() -> asyncio.Future[Reservation]:
        return asyncio.ensure_future(limits.reserve(provider.name, 1, provider.settings.requests_per_second))

    slot = reserve()
    try:
        while True:
            await limits.wait_for_slot(await slot, 0)
            if paused := await limits.paused_for(provider.name):
                raise RateLimited(f"{provider.name}: paused by a 429 for {paused:.0f}s more", retry_after=paused)
            slot = reserve()
            try:
                page = await anext(it)
            except StopAsyncIteration:
                return
            yield page
    finally:
        if not slot.done():
            slot.cancel()
        await asyncio.wait([slot])
        if not slot.cancelled():
            slot.exception()  # a reservation nobody waits for any more: its failure is not reported
