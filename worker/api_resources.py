"""The read routes of the HTTP API: GET /v1/resources/{rkey} (what statehook knows of one
resource) and GET /v1/events (the outbox's recent events, or one resource's timeline)."""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from pydantic import ValidationError

from model.resources import ResourceRef
from store import keys
from store.deliveries import Deliveries
from store.outbox import Outbox
from store.reads import Reads, Unreadable
from worker import api_models as models
from worker.api_http import error, json_response, query_of, state_of
from worker.api_watches import meta_view

__all__ = ["get_resource", "list_events", "resource_view"]


async def resource_view(redis: aioredis.Redis, rkey: str, *, history: int = 50) -> dict[str, Any] | None:
    """What statehook knows of one resource: its watch, due time, commit state, snapshot,
    and its timeline (newest first), each event with its delivery attempts. None if
    it is neither watched nor ever polled. A part that cannot be read is left out (None,
    or missing from the timeline), logged with its key and counted."""
    bad = Unreadable()
    found = await Reads(redis).resource(bad, rkey, history=history)
    if found is None:
        return None
    timeline = found.timeline
    if timeline:
        stored = await Deliveries(redis).stored_attempts([item["id"] for item in timeline])
        for item, attempts in zip(timeline, stored, strict=True):
            read = (bad.read(keys.attempts(item["id"]), _json_object, a) for a in reversed(attempts))
            item["deliveries"] = [d for d in read if d is not None]
    await bad.report(redis)
    ref = ResourceRef.parse(rkey)
    meta, state = found.meta, found.state
    return {
        "rkey": rkey,
        "provider": ref.provider,
        "kind": ref.kind,
        "id": ref.id,
        "watch": meta_view(meta) if meta else None,
        "due_at": found.due_at,
        "state": {"digest": state.digest, "seq": state.seq, "changed_at": state.changed_at} if state else None,
        "consecutive_errors": found.consecutive_errors,
        "snapshot": found.snapshot,
        "history": timeline,
    }


async def get_resource(request: web.Request) -> web.Response:
    rkey = request.match_info["rkey"]
    try:
        models.ResourcePath(rkey=rkey)
    except ValidationError:
        return error(400, "not a resource key: expected provider:kind:id",
                     problems=[{"field": "rkey", "problem": "expected provider:kind:id"}])
    query = query_of(request, models.ResourceQuery)
    if isinstance(query, web.Response):
        return query
    view = await resource_view(state_of(request).redis, rkey, history=query.history)
    if view is None:
        return error(404, f"{rkey} is not watched and was never polled")
    return json_response(view)


async def list_events(request: web.Request) -> web.Response:
    """Without `rkey`: events of the outbox stream, oldest first, after `after` (a stream
    id; without it, the latest `limit`). The outbox is trimmed once every consumer has
    dispatched an entry, so it holds recent events; a resource's own timeline (`rkey=`)
    keeps its last `history_length` events."""
    st = state_of(request)
    query = query_of(request, models.EventsQuery)
    if isinstance(query, web.Response):
        return query
    limit, after = query.limit, query.after
    if query.rkey is not None:
        hist = await st.store.history(query.rkey, limit)
        return json_response({"rkey": query.rkey, "events": hist, "next": None})
    entries = await Outbox(st.redis).entries(after, limit)
    events, bad = [], Unreadable()
    for entry in entries:
        raw = entry.event
        event = bad.read(f"{keys.OUTBOX}[{entry.entry_id}]", _json_object, raw) if raw is not None else None
        if event is not None:
            events.append({"stream_id": entry.entry_id, **event})
    await bad.report(st.redis)
    last = entries[-1].entry_id if entries else after
    return json_response({"events": events, "next": last})


def _json_object(raw: bytes | str) -> dict[str, Any]:
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return value
