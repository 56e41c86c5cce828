"""Dead letters: filtered by destination, event type (a glob), resource and time range, paged
by cursor (a stream id); replayed one, the selected ones, or all that match (each becomes a
delivery job again, `statehook dlq replay`'s own function); purged the same ways. A replayed
delivery's new attempts are recorded under its event, so its resource page shows them."""

from __future__ import annotations

import asyncio
import calendar
import fnmatch
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from store.deliveries import DeadLetter, Deliveries
from store.reads import Reads, Unreadable
from worker.api_fields import STREAM_ID_PATTERN
from worker.api_http import DEADLINE
from worker.console.render import page_url
from worker.console.session import Flash
from worker.console.state import BASE, console_of, form_of, page, see_other
from worker.delivery_ops import is_entry_id, purge_dead_letters, replay_dead_letters

__all__ = ["DeadLetterFilter", "dead_letters", "matching_dead_letters", "purge", "replay"]

log = logging.getLogger("statehook.console")

PAGE_SIZE = 50
CHUNK = 200
SCAN_BUDGET = 5000
"""dead letters a page reads at most while looking for matches (then it offers the next page)"""
MAX_BULK = 10_000
"""dead letters one "all that match" replays or purges (the rest: once more)"""
BULK_SECONDS = 60.0
_WHEN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")


def _ms(text: str, field: str) -> int | None:
    """A `datetime-local` value (UTC) as epoch ms; 400 for one that is not."""
    text = text.strip()
    if not text:
        return None
    if not _WHEN.fullmatch(text):
        raise web.HTTPBadRequest(reason=f"{field}: expected a time like 2026-11-23T10:15 (UTC)")
    fmt = "%Y-%m-%dT%H:%M:%S" if text.count(":") == 2 else "%Y-%m-%dT%H:%M"
    try:
        ms = calendar.timegm(time.strptime(text, fmt)) * 1000
    except ValueError:
        raise web.HTTPBadRequest(reason=f"{field}: not a valid time") from None
    if ms < 0:  # a stream id is never negative
        raise web.HTTPBadRequest(reason=f"{field}: a time from 1970-01-01T00:00 (UTC) on")
    return ms


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    destination: str = ""
    type: str = ""
    rkey: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> DeadLetterFilter:
        def text(name: str, limit: int = 200) -> str:
            value = values.get(name)
            return value.strip()[:limit] if isinstance(value, str) else ""

        found = cls(text("destination"), text("type"), text("rkey", 512), text("since", 19), text("until", 19))
        _ms(found.since, "since"), _ms(found.until, "until")
        return found

    @property
    def start(self) -> str:
        ms = _ms(self.since, "since")
        return "-" if ms is None else f"{ms}-0"

    @property
    def end(self) -> str:
        ms = _ms(self.until, "until")
        return "+" if ms is None else f"{ms + 59_999 if self.until.count(':') == 1 else ms + 999}-18446744073709551615"

    def matches(self, d: DeadLetter) -> bool:
        return ((not self.destination or d.destination == self.destination)
                and (not self.type or fnmatch.fnmatchcase(d.type, self.type))
                and (not self.rkey or self.rkey in d.resource))

    def query(self) -> dict[str, str]:
        return {k: v for k, v in (("destination", self.destination), ("type", self.type), ("rkey", self.rkey),
                                  ("since", self.since), ("until", self.until)) if v}

    @property
    def narrows(self) -> bool:
        return bool(self.query())


async def matching_dead_letters(reads: Reads, bad: Unreadable, wanted: DeadLetterFilter, *, start: str,
                                want: int, budget: int) -> tuple[list[DeadLetter], str | None]:
    """Up to `want` dead letters from `start` that match, reading at most `budget`; and where
    to go on (None: nothing more to read)."""
    found: list[DeadLetter] = []
    read = 0
    while read < budget:
        letters, last = await reads.dead_letter_page(bad, start=start, end=wanted.end, count=min(CHUNK, budget - read))
        if last is None:
            return found, None
        read += CHUNK
        for d in letters:
            if wanted.matches(d):
                found.append(d)
                if len(found) == want:
                    return found, d.id
        start = f"({last}"
    return found, start[1:]


async def dead_letters(request: web.Request) -> web.Response:
    cs = console_of(request)
    st = cs.api
    wanted = DeadLetterFilter.of(request.query)
    cursor = request.query.get("cursor", "")
    if cursor and not re.fullmatch(STREAM_ID_PATTERN, cursor):
        raise web.HTTPBadRequest(reason="cursor: not a stream id")
    bad = Unreadable()
    rows, more = await matching_dead_letters(st.reads, bad, wanted, start=f"({cursor}" if cursor else wanted.start,
                                             want=PAGE_SIZE, budget=SCAN_BUDGET)
    await bad.report(st.redis)
    total, disabled = await Deliveries(st.redis).gauges()
    return page(request, "dead_letters.html.j2", title="Dead letters", nav="dlq", rows=rows, filter=wanted,
                next_cursor=more, cursor=cursor, total=total, destinations=sorted(st.config.destinations),
                disabled=disabled)


def _long_deadline(request: web.Request) -> None:
    deadline = request.get(DEADLINE)
    if deadline is not None:
        deadline.reschedule(asyncio.get_running_loop().time() + BULK_SECONDS)


async def _chosen(request: web.Request) -> tuple[list[str] | None, DeadLetterFilter, str]:
    """The entry ids a replay or purge names (None: every dead letter), its filter, and the
    page to go back to."""
    form = form_of(request)
    wanted = DeadLetterFilter.of(form)
    back = page_url(BASE + "/dead-letters", wanted.query())
    if form.get("scope") != "matching":
        ids = [i for i in form.getall("id", []) if isinstance(i, str)]
        if not ids or not all(is_entry_id(i) for i in ids):
            raise _Refused(back, "Select at least one dead letter (or choose all that match).")
        return ids, wanted, back
    if not wanted.narrows:
        return None, wanted, back
    _long_deadline(request)
    st = console_of(request).api
    bad = Unreadable()
    found, _ = await matching_dead_letters(st.reads, bad, wanted, start=wanted.start, want=MAX_BULK,
                                           budget=10 * MAX_BULK)
    await bad.report(st.redis)
    return [d.id for d in found], wanted, back


class _Refused(Exception):
    def __init__(self, back: str, text: str) -> None:
        super().__init__(text)
        self.back, self.text = back, text


async def replay(request: web.Request) -> web.Response:
    try:
        ids, _, back = await _chosen(request)
    except _Refused as exc:
        return see_other(request, exc.back, Flash("error", exc.text))
    _long_deadline(request)
    api = console_of(request).api
    outcomes = await replay_dead_letters(api.redis, ids, history_length=api.config.settings.worker.history_length)
    queued = sum(1 for o in outcomes if o.enqueued)
    log.info("console: %d dead letter(s) replayed", len(outcomes))
    text = f"{len(outcomes)} dead letter(s) replayed: {queued} delivery job(s) queued"
    if len(outcomes) > queued:
        text += f", {len(outcomes) - queued} already queued"
    return see_other(request, back, Flash("ok", text + "."))


async def purge(request: web.Request) -> web.Response:
    form = form_of(request)
    try:
        ids, _, back = await _chosen(request)
    except _Refused as exc:
        return see_other(request, exc.back, Flash("error", exc.text))
    if form.get("scope") == "matching" and form.get("confirm") != "yes":
        return see_other(request, back, Flash("error", "Not purged: tick “I mean it” to delete every match."))
    redis = console_of(request).api.redis
    if ids is None:
        n = await purge_dead_letters(redis)
    else:
        _long_deadline(request)
        deliveries = Deliveries(redis)
        for entry_id in ids:
            await deliveries.remove_dead_letter(entry_id)
        n = len(ids)
    log.info("console: %d dead letter(s) purged", n)
    return see_other(request, back, Flash("ok", f"{n} dead letter(s) deleted."))
