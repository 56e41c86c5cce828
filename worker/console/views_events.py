"""Events: the recent events the outbox still holds (or one resource's timeline), and a live
tail of new ones as server-sent events, both filtered by provider, type (a glob such as
`artistree.*`), severity and resource.

The tail reads the outbox stream directly (XREAD, as `statehook events tail -f` does): it
takes nothing from the dispatchers. It ends when the session expires or the API stops;
the browser's EventSource reconnects with Last-Event-ID and continues after the last
event it was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from model.resources import ResourceRef
from store.outbox import Outbox
from store.reads import Reads
from worker.api_fields import STREAM_ID_PATTERN
from worker.api_http import DEADLINE
from worker.console.session import SESSION_COOKIE
from worker.console.state import console_of, page
from worker.persistence import redis_down, redis_problem

__all__ = ["EventFilter", "events", "events_stream"]

log = logging.getLogger("statehook.console")

RECENT = 200
KEEPALIVE = 15.0
BLOCK_MS = 500
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class EventFilter:
    provider: str = ""
    type: str = ""
    severity: str = ""
    rkey: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> EventFilter:
        severity = query.get("severity", "")
        return cls(provider=query.get("provider", "").strip()[:64], type=query.get("type", "").strip()[:200],
                   severity=severity if severity in SEVERITIES else "", rkey=query.get("rkey", "").strip()[:512])

    def matches(self, event: Mapping[str, Any]) -> bool:
        resource = _resource(event)
        return ((not self.provider or event.get("provider") == self.provider)
                and (not self.type or fnmatch.fnmatchcase(str(event.get("type", "")), self.type))
                and (not self.severity or event.get("severity") == self.severity)
                and (not self.rkey or resource.get("key") == self.rkey))


def _resource(event: Mapping[str, Any]) -> Mapping[str, Any]:
    resource = event.get("resource")
    return resource if isinstance(resource, dict) else {}


def row(stream_id: str | None, event: Mapping[str, Any]) -> dict[str, Any]:
    """What the page and the tail show of an event (never its snapshot or data)."""
    resource = _resource(event)
    return {"stream_id": stream_id, "at": str(event.get("detected_at") or event.get("at") or ""),
            "severity": str(event.get("severity", "")), "type": str(event.get("type", "")),
            "rkey": str(resource.get("key", "")), "summary": str(event.get("summary", ""))}


def _event(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


async def events(request: web.Request) -> web.Response:
    cs = console_of(request)
    st = cs.api
    wanted = EventFilter.of(request.query)
    after = ""
    if wanted.rkey and _is_rkey(wanted.rkey):
        provider = ResourceRef.parse(wanted.rkey).provider
        timeline = [{**h, "provider": provider, "resource": {"key": wanted.rkey}}
                    for h in await st.store.history(wanted.rkey, RECENT) if "note" not in h]
        rows = [row(None, h) for h in timeline if wanted.matches(h)]
        entries = await Outbox(st.redis).entries(None, 1)
    else:
        entries = await Outbox(st.redis).entries(None, RECENT)
        rows = [row(e.entry_id, ev) for e in reversed(entries) if (ev := _event(e.event)) and wanted.matches(ev)]
    if entries:
        after = entries[-1].entry_id
    return page(request, "events.html.j2", title="Events", nav="events", rows=rows, filter=wanted,
                severities=SEVERITIES, providers=sorted(st.config.providers), after=after)


def _is_rkey(text: str) -> bool:
    try:
        ResourceRef.parse(text)
    except ValueError:
        return False
    return True


def _start(request: web.Request) -> str | None:
    import re

    given = request.headers.get("Last-Event-ID") or request.query.get("after") or ""
    return given if re.fullmatch(STREAM_ID_PATTERN, given) else None


async def _send(response: web.StreamResponse, text: str) -> None:
    await response.write(text.encode())


async def events_stream(request: web.Request) -> web.StreamResponse:
    """text/event-stream: `event: event` with a row's JSON per new matching event."""
    cs = console_of(request)
    assert cs.signer is not None
    deadline = request.get(DEADLINE)
    if deadline is not None:
        deadline.reschedule(None)  # a stream lasts; each read below has its own bound
    wanted = EventFilter.of(request.query)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    from worker.console.guard import SECURITY_HEADERS

    response.headers.update(SECURITY_HEADERS)
    reads = Reads(cs.api.redis)
    last = _start(request)
    if last is None:  # fixed before the first byte: a client that has it misses nothing added after
        with contextlib.suppress(Exception):  # Redis down: the tail finds it when Redis answers
            async with asyncio.timeout(3.0):
                last = await _position(reads, None)
    await response.prepare(request)
    await _send(response, "retry: 2000\n\n")
    try:
        await _tail(request, response, reads, wanted, last)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


async def _position(reads: Reads, last: str | None) -> str:
    if last is not None:
        return last
    newest = await reads.newest_outbox(1)
    return newest[0][0].decode() if newest else "0-0"


async def _tail(request: web.Request, response: web.StreamResponse, reads: Reads, wanted: EventFilter,
                last: str | None) -> None:
    cs = console_of(request)
    assert cs.signer is not None
    cookie = request.cookies.get(SESSION_COOKIE)
    position: str | None = None
    idle = 0.0
    loop = asyncio.get_running_loop()
    while not cs.closing.is_set() and cs.signer.session(cookie, cs.clock()) is not None:
        started = loop.time()
        try:
            async with asyncio.timeout(3.0):
                position = position or await _position(reads, last)
                entries = await reads.outbox_after(position.encode(), count=100, block_ms=BLOCK_MS)
        except Exception as exc:
            if not (redis_down(exc) or isinstance(exc, TimeoutError)):
                raise
            await _send(response, f": redis unavailable ({redis_problem(exc)})\n\n")
            await _pause(cs.closing, 1.0)
            continue
        for entry_id, fields in entries:
            position = entry_id.decode()
            event = _event(fields.get(b"e"))
            if event is not None and wanted.matches(event):
                data = orjson.dumps(row(position, event)).decode()
                await _send(response, f"id: {position}\nevent: event\ndata: {data}\n\n")
        idle = 0.0 if entries else idle + loop.time() - started
        if idle >= KEEPALIVE:
            await _send(response, ": keepalive\n\n")
            idle = 0.0
    await _send(response, "event: end\ndata: {}\n\n")


async def _pause(closing: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await closing.wait()
    except TimeoutError:
        pass
