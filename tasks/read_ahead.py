"""An async iterator read one item ahead of its consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")


async def read_ahead(pages: AsyncIterator[T]) -> AsyncIterator[T]:
    """`pages`, with the next one already being fetched while the caller works on this one:
    a listed page's transfer overlaps the comparison of the page before it."""
    it = aiter(pages)
    ahead: asyncio.Future[T] = asyncio.ensure_future(anext(it))
    try:
        while True:
            try:
                page = await ahead
            except StopAsyncIteration:
                return
            ahead = asyncio.ensure_future(anext(it))
            yield page
    finally:
        if not ahead.done():
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await ahead
