"""POST /v1/resources/{rkey}/ack: acknowledge a resource's current state, so that its
reminders stop (store/reminders.py). 200 with what was stopped; 404 for a resource statehook
does not know; 409 when no reminder is armed for it (nothing to acknowledge, or acknowledged
already). The body is optional: `{"author": …, "comment": …}` (none, or `null`, names no
author: "api")."""

from __future__ import annotations

import logging
import time

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.reminders import MAX_ACK_AUTHOR, MAX_ACK_COMMENT
from store.reminders import AckResult, Reminders
from worker import api_models as models
from worker.api_http import answer, error, read_body, start_deadline, state_of, validated

__all__ = ["AckRequest", "Acknowledged", "ack_resource", "nothing_armed"]

log = logging.getLogger("statehook.api")

API_AUTHOR = "api"
"""The author of an acknowledgement whose request names none."""


class AckRequest(BaseModel):
    """The body of POST /v1/resources/{rkey}/ack (optional)."""

    model_config = ConfigDict(extra="forbid")

    author: str | None = Field(default=None, max_length=MAX_ACK_AUTHOR,
                               description='who acknowledges (none or blank: "api")')
    comment: str = Field(default="", max_length=MAX_ACK_COMMENT)


class Acknowledged(BaseModel):
    """The state acknowledged and how many reminders (one per route and destination) stopped."""

    rkey: str
    state: str
    stopped: int
    author: str
    comment: str
    at: float


def nothing_armed(rkey: str, result: AckResult) -> str:
    """Why there is nothing to acknowledge (the API's 409, the CLI's error)."""
    prev = result.previous
    if prev is not None:
        return (f"nothing to acknowledge: no reminder is armed for {rkey} (its state {prev.state!r} was "
                f"acknowledged by {prev.author})")
    return f"nothing to acknowledge: no reminder is armed for {rkey}"


async def _body(request: web.Request) -> AckRequest | web.Response:
    """The optional body: none, or JSON `null`, is no author and no comment."""
    if not request.can_read_body:
        start_deadline(request)
        return AckRequest()
    raw = await read_body(request)
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as exc:
        return error(400, f"body is not JSON: {exc.msg}")
    if data is not None and not isinstance(data, dict):
        return error(400, "body must be a JSON object")
    return validated(AckRequest, data or {}, "acknowledgement")


async def ack_resource(request: web.Request) -> web.Response:
    rkey = request.match_info["rkey"]
    try:
        models.ResourcePath(rkey=rkey)
    except ValidationError:
        return error(400, "not a resource key: expected provider:kind:id",
                     problems=[{"field": "rkey", "problem": "expected provider:kind:id"}])
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    st = state_of(request)
    author, now = (body.author or "").strip() or API_AUTHOR, time.time()
    reminders = Reminders(st.redis, history_length=st.config.settings.worker.history_length)
    result = await reminders.ack(rkey, author=author, comment=body.comment, now=now)
    if not result.known:
        return error(404, f"{rkey} is not watched and was never polled")
    if result.state is None:
        return error(409, nothing_armed(rkey, result))
    log.info("api: %s acknowledged (%d reminders stopped)", rkey, result.stopped)
    return answer(Acknowledged(rkey=rkey, state=result.state, stopped=result.stopped, author=author,
                               comment=body.comment, at=now))
