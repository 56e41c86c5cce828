"""Resources that disappear from a scan: what a full sweep no longer lists, confirmed.

Each page's rkeys go to the scan's sweep in progress (store/sweeps.py), in the round trip
that compares a listed page or in a page of previews' commit (a sweep that stopped on an
error of Redis leaves what it listed there, which only delays a gone by one sweep). At the
sweep's end it is compared with the last full sweep. What that one listed and this one did
not is fetched directly: a 404 is `{provider}.{kind}.gone` (as for
a watched id) and it is tracked no more; any other answer keeps it for one more sweep (a
listing's page boundaries moved while it was read, or the GET failed), marked `~rkey`. A
kept one missing again is fetched again: 404 is gone, anything else lets it go (it has
left the listing for good, e.g. moved to another project; its state stays). At most
`gone_checks` are fetched per sweep; the rest wait for the next, kept unmarked. A sweep
that fails before its end forgets what it listed, so a partial sweep reports nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.decide import Fetched, Watch, is_gone
from model.errors import NotFound
from model.resources import ResourceRef
from providers.base import Provider
from store.snapshots import Store
from tasks.poll_plan import Seen

__all__ = ["KEPT", "Unlisted", "unlisted"]

log = logging.getLogger("statehook.poll")

KEPT = "~"
"""The mark of an rkey kept from the sweep before though it was not listed."""

Fetch = Callable[[Provider, Sequence[ResourceRef]], Awaitable[list[Any]]]


@dataclass(slots=True)
class Unlisted:
    """What a sweep's end found of the resources it no longer lists."""

    gone: list[Seen]
    """confirmed gone (404): to be decided and committed before the sweep ends"""
    keep: list[str]
    """members for the sweep to keep (`Store.end_sweep`)"""


async def unlisted(store: Store, fetch: Fetch, provider: Provider, scan: ResourceRef, watch: Watch,
                   limit: int) -> Unlisted:
    """Confirm what the sweep of `scan` in progress no longer lists (see the module's doc)."""
    members = await store.unlisted(scan.key, KEPT)
    again = [m[len(KEPT):] for m in members if m.startswith(KEPT)]  # kept, and not listed this time either
    fresh = [m for m in members if not m.startswith(KEPT)]
    refs: list[ResourceRef] = []
    for rkey in fresh + again:
        try:
            refs.append(ResourceRef.parse(rkey))
        except ValueError:
            log.warning("scan %s: not a resource key, skipped: %r", scan.key, rkey)
    check, later = refs[:limit], refs[limit:]
    result = Unlisted([], [r.key for r in later])
    if not check:
        return result
    states = await store.states([r.key for r in check])
    answers = await fetch(provider, check)
    was_kept = set(again)
    for ref, state, answer in zip(check, states, answers, strict=True):
        if isinstance(answer, NotFound):
            if state is not None and not is_gone(state):  # found gone before (by its id's poll): no news
                result.gone.append(Seen(state, Fetched(ref, answer), watch))
        elif ref.key not in was_kept:
            result.keep.append(KEPT + ref.key)
    if result.gone or result.keep:
        log.info("scan %s: %d no longer listed, %d gone, %d kept", scan.key, len(check), len(result.gone),
                 len(result.keep), extra={"rkey": scan.key})
    return result
