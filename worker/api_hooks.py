"""Inbound hooks: POST /v1/hooks/{provider}/{token}, a provider's notification taken as a
hint to poll. It never carries state into statehook: it makes the resource due now and runs
the scheduler at once, and the poll reads the state from the provider's API. A hook for a
resource that is not watched is refused (404): a notification URL is no way to add watches."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from model.resources import ResourceRef
from worker import api_models as models
from worker.api_http import FORM_ERRORS, answer, error, read_body, receiving_body, start_deadline, state_of
from worker.queue import schedule_now

__all__ = ["HOOK_IDS", "hook", "rev_order_number"]

log = logging.getLogger("statehook.api")

_ORDER_NUMBER = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_REV_FIELDS = ("order_number", "orderNumber", "OrderNumber", "ordernum", "order_num", "order_id", "orderId")
_MAX_NESTING = 8
"""`order` objects looked into, one in another (Rev wraps once; a body of a thousand is no notification)."""


def rev_order_number(body: Mapping[str, Any]) -> str | None:
    """Rev's notification names the order as `order_number` (older callbacks and form
    posts use other spellings; an `order` object may wrap it: the innermost that names one wins)."""
    levels = [body]
    while len(levels) <= _MAX_NESTING:
        nested = levels[-1].get("order") or levels[-1].get("Order")
        if not isinstance(nested, Mapping):
            break
        levels.append(nested)
    for level in reversed(levels):
        for name in _REV_FIELDS:
            value = level.get(name)
            if isinstance(value, str) and _ORDER_NUMBER.match(value.strip()):
                return value.strip()
    return None


HOOK_IDS: dict[str, tuple[str, Callable[[Mapping[str, Any]], str | None]]] = {
    "rev": ("order", rev_order_number),
}
"""provider → (kind, how to find the resource id in the notification's body)."""


async def _hook_body(request: web.Request) -> dict[str, Any] | None:
    """JSON or form-encoded (urlencoded or multipart); query parameters fill in."""
    data: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return data
    ctype = request.content_type
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            async with receiving_body(request):
                form = await request.post()
        except FORM_ERRORS:
            return None
        data.update({k: v for k, v in form.items() if isinstance(v, str)})
        return data
    raw = await read_body(request)
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        if ctype == "application/json":
            return None
        from urllib.parse import parse_qsl

        data.update(parse_qsl(raw.decode("utf-8", "replace")))
        return data
    if not isinstance(parsed, dict):
        return None
    data.update(parsed)
    return data


async def hook(request: web.Request) -> web.Response:
    st = state_of(request)
    provider = request.match_info["provider"]
    given = request.match_info["token"].encode()
    expected = st.hook_tokens.get(provider)
    # compare against something even when nothing is configured: the answer's timing says nothing
    ok = hmac.compare_digest(given, expected if expected is not None else b"\0" * 32)
    if provider not in HOOK_IDS:
        return error(404, f"no inbound hooks for provider {provider!r}", known=sorted(HOOK_IDS))
    if expected is None:
        return error(404, f"inbound hooks for {provider} are not enabled: "
                          f"set STATEHOOK_API__HOOK_TOKENS__{provider.upper()}")
    if not ok:
        return error(401, "invalid hook token")
    body = await _hook_body(request)
    start_deadline(request)
    if body is None:
        return error(400, "body must be a JSON object or a form")
    kind, extract = HOOK_IDS[provider]
    rid = extract(body)
    if rid is None:
        return error(422, f"the notification names no {kind} (expected e.g. order_number)")
    rkey = ResourceRef(provider, kind, rid).key
    if not await st.reads.is_watched(rkey):
        return error(404, f"{rkey} is not watched: register it with POST /v1/watches", rkey=rkey)
    await st.reads.due_now(st.store, rkey)
    await schedule_now(st.redis)
    log.info("hook: %s made due now", rkey, extra={"rkey": rkey, "provider": provider})
    return answer(models.HookAccepted(rkey=rkey, status="poll scheduled"), status=202)

