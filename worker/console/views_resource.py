"""A resource: its snapshot (each value by its JSON pointer, the values its provider knows
to be volatile marked), its timeline newest first with every delivery attempt of each
event and the reason of any dead letter, and "poll now"."""

from __future__ import annotations

import calendar
import logging
import time
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from model.resources import ResourceRef
from store.reads import Reads, Unreadable
from worker import api_models as models
from worker.api_resources import resource_view
from worker.console.render import page_url
from worker.console.session import Flash
from worker.console.state import BASE, ConsoleState, console_of, form_of, page, see_other
from worker.console.views_watches import state_label
from worker.queue import schedule_now

__all__ = ["DEAD_LETTERS_SEARCHED", "flatten", "poll_now", "resource"]

log = logging.getLogger("statehook.console")

HISTORY = 50
MAX_ROWS = 400
DEAD_LETTERS_SEARCHED = 300
"""dead letters read (from the oldest shown event's time on) to find the shown events' reasons"""


def flatten(value: Any, volatile: frozenset[str], path: str = "") -> list[dict[str, Any]]:
    """Each leaf of a snapshot as {path (a JSON pointer), value, volatile}."""
    if isinstance(value, dict) and value:
        rows = []
        for key in sorted(value):
            rows += flatten(value[key], volatile, f"{path}/{_pointer(str(key))}")
            if len(rows) > MAX_ROWS:
                break
        return rows
    if isinstance(value, list) and value:
        return [row for i, item in enumerate(value) for row in flatten(item, volatile, f"{path}/{i}")]
    leaf = path.rsplit("/", 1)[-1]
    shown = value if isinstance(value, str) else orjson.dumps(value).decode()
    return [{"path": path or "/", "value": shown, "volatile": leaf in volatile}]


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _rkey_of(request: web.Request) -> str:
    rkey = request.query.get("rkey", "")
    try:
        models.ResourcePath(rkey=rkey)
    except ValidationError:
        raise web.HTTPBadRequest(reason="not a resource key: expected provider:kind:id") from None
    return rkey


def _epoch_ms(at: str) -> int | None:
    try:
        return calendar.timegm(time.strptime(at, "%Y-%m-%dT%H:%M:%SZ")) * 1000
    except (ValueError, TypeError):
        return None


def _undelivered(item: dict[str, Any]) -> bool:
    """Whether an event may be in the dead letters: no attempt recorded (a disabled or unknown
    destination dead-letters without one), or some destination's last attempt failed."""
    last: dict[str, bool] = {}
    for attempt in item.get("deliveries") or ():
        if isinstance(attempt, dict):
            last[str(attempt.get("destination"))] = bool(attempt.get("ok"))
    return not last or not all(last.values())


async def _dead_reasons(reads: Reads, bad: Unreadable, timeline: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """(event id, destination) → its dead letter, for the events shown that may have one: the
    dead letters are read from the oldest such event's time on, DEAD_LETTERS_SEARCHED at most."""
    candidates = [item for item in timeline if "note" not in item and _undelivered(item)]
    ids = {item["id"] for item in candidates}
    starts = [ms for item in candidates if (ms := _epoch_ms(item.get("at", ""))) is not None]
    if not ids or not starts:
        return {}
    letters, _ = await reads.dead_letter_page(bad, start=str(min(starts)), count=DEAD_LETTERS_SEARCHED)
    return {(d.event_id, d.destination): d for d in letters if d.event_id in ids}


def _volatile(cs: ConsoleState, provider: str) -> frozenset[str]:
    spec = cs.specs.get(provider)
    blanks = spec.fingerprint_blanks if spec is not None else None
    return frozenset(blanks or ())


async def resource(request: web.Request) -> web.Response:
    cs = console_of(request)
    st = cs.api
    rkey = _rkey_of(request)
    view = await resource_view(st.redis, rkey, history=HISTORY)
    if view is None:
        raise web.HTTPNotFound(reason=f"{rkey} is not watched and was never polled")
    bad = Unreadable()
    dead = await _dead_reasons(st.reads, bad, view["history"])
    await bad.report(st.redis)
    ref = ResourceRef.parse(rkey)
    volatile = _volatile(cs, ref.provider)
    snapshot = view["snapshot"]
    return page(
        request, "resource.html.j2", title=rkey, nav="watches", view=view, rkey=rkey,
        state=state_label(cs, ref, snapshot), volatile=sorted(volatile),
        snapshot_rows=flatten(snapshot, volatile) if isinstance(snapshot, dict) else [],
        dead=dead, self_url=page_url(BASE + "/resource", {}, rkey=rkey),
    )


async def poll_now(request: web.Request) -> web.Response:
    """Make the resource due now and run the scheduler at once, as an inbound hook does."""
    st = console_of(request).api
    rkey = form_of(request).get("rkey")
    try:
        models.ResourcePath(rkey=rkey)
    except ValidationError:
        return see_other(request, BASE + "/watches", Flash("error", "not a resource key"))
    assert isinstance(rkey, str)
    back = page_url(BASE + "/resource", {}, rkey=rkey)
    if not await st.reads.is_watched(rkey):
        return see_other(request, back, Flash("error", f"{rkey} is not watched: nothing to poll"))
    await st.reads.due_now(st.store, rkey)
    await schedule_now(st.redis)
    log.info("console: %s made due now", rkey, extra={"rkey": rkey})
    return see_other(request, back, Flash("ok", "Poll scheduled: the page shows what it finds once it ran."))
