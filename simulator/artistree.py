"""Artistree Human's stand-in (seeds 000_*, 001_*): OAuth2 client credentials, one order,
the paginated order list, presigned URLs that change on every answer, and a scripted
progression of order states for the demo.

This module is the HTTP side (the API and the control routes); the orders are kept by
simulator/artistree_orders.py and moved along by simulator/artistree_progression.py.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from simulator.artistree_orders import (
    ALL_PROJECTS,
    DEFAULT_PROJECT_ID,
    ORDER_FIELDS,
    PERSONAL,
    STAT_KEYS,
    STATES,
    Scope,
)
from simulator.artistree_progression import ArtistreeProgression
from simulator.core import SimProvider, json_response

__all__ = [
    "ALL_PROJECTS",
    "DEFAULT_PROJECT_ID",
    "ORDER_FIELDS",
    "PERSONAL",
    "STATES",
    "ArtistreeSim",
]


def _encode_page_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"after:{seq}".encode()).decode().rstrip("=")


def _decode_page_token(token: str) -> int:
    """The sequence number a page starts at; ValueError if the token is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("Invalid page_token") from exc
    prefix, _, seq = raw.partition(":")
    if prefix != "after" or not seq.isdigit():
        raise ValueError("Invalid page_token")
    return int(seq)


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else (None, None)


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(value)


def _query_error(name: str, msg: str, value: str) -> web.Response:
    """FastAPI's shape for a query parameter that fails validation."""
    return json_response(
        {"detail": [{"type": "value_error", "loc": ["query", name], "msg": msg, "input": value}]}, status=422
    )


MAX_LIMIT = 1000
DEFAULT_LIMIT = 200


class ArtistreeSim(ArtistreeProgression, SimProvider):
    """Artistree Human: `/oauth2/token`, `/v1/orders/{order_id}`, `/v1/orders`."""

    name = "artistree"

    def __init__(
        self,
        client_id: str = "sim-client",
        client_secret: str = "sim-secret",
        *,
        token_lifetime: int = 3600,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed=seed)
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.tokens_issued = 0
        self._tokens: dict[str, float] = {}

    def expire_tokens(self) -> None:
        """Every token issued so far stops working: the next request gets 401."""
        self._tokens.clear()

    @property
    def valid_tokens(self) -> int:
        now = time.monotonic()
        return sum(1 for expires in self._tokens.values() if expires > now)


    # ---- HTTP API --------------------------------------------------------------------

    def add_api_routes(self, app: web.Application) -> None:
        app.router.add_post("/oauth2/token", self._token)
        app.router.add_get("/v1/orders", self._list_orders)
        app.router.add_get("/v1/orders/{order_id}", self._get_order)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = _basic_credentials(request.headers.get("Authorization"))
        if client_id is None:
            form_id, form_secret = form.get("client_id"), form.get("client_secret")
            client_id = form_id if isinstance(form_id, str) else None
            secret = form_secret if isinstance(form_secret, str) else None
        if not (
            client_id is not None
            and secret is not None
            and hmac.compare_digest(client_id.encode(), self.client_id.encode())
            and hmac.compare_digest(secret.encode(), self.client_secret.encode())
        ):
            return json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, status=400)
        now = time.monotonic()
        if len(self._tokens) > 1000:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
        token = secrets.token_urlsafe(48)
        self._tokens[token] = now + self.token_lifetime
        self.tokens_issued += 1
        return json_response({"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expires = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        return expires is not None and expires > time.monotonic()

    async def _get_order(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        order = self._orders.get(request.match_info["order_id"])
        if order is None:
            return json_response({"detail": "Order not found"}, status=404)
        return json_response(self._render(order))

    async def _list_orders(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        query = request.query
        project_id = query.get("project_id")
        if not project_id:
            return json_response(
                {"detail": "project_id is required; pass 'All Projects' for every order of the organization"},
                status=400,
            )
        raw_limit = query.get("limit", str(DEFAULT_LIMIT))
        try:
            limit = int(raw_limit)
        except ValueError:
            return _query_error("limit", "Input should be a valid integer", raw_limit)
        if not 1 <= limit <= MAX_LIMIT:
            return _query_error("limit", f"Input should be between 1 and {MAX_LIMIT}", raw_limit)
        try:
            preview = _parse_bool(query.get("preview", "false"))
        except ValueError:
            return _query_error("preview", "Input should be a valid boolean", query.get("preview", ""))
        page_token = query.get("page_token")
        try:
            start = _decode_page_token(page_token) if page_token else 0
        except ValueError:
            return json_response({"detail": "Invalid page_token"}, status=400)

        if project_id == ALL_PROJECTS:
            seqs: Sequence[int] | None = None
            stats = self._stats
            names = [PERSONAL, *sorted(p.name for p in self._projects.values())]
        else:
            scope = (
                self._personal
                if project_id == PERSONAL
                else (self._projects[project_id].scope if project_id in self._projects else Scope())
            )
            seqs, stats, names = scope.seqs, scope.stats, []
        orders, next_seq = self._page(seqs, start, limit)
        order_stats = {key: stats[state] for state, key in STAT_KEYS.items()}
        order_stats["total_orders"] = sum(stats.values())
        return json_response(
            {
                "order_stats": order_stats,
                "project_names": names,
                "next_page_token": _encode_page_token(next_seq) if next_seq is not None else None,
                "orders": None if preview else [self._render(o) for o in orders],
                "order_previews": [self._preview(o) for o in orders] if preview else None,
            }
        )

    # ---- control routes (/_sim/artistree/...) ----------------------------------------

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_get("/stats", self._ctl_stats)
        app.router.add_post("/orders", self._ctl_add)
        app.router.add_get("/orders/{order_id}", self._ctl_get)
        app.router.add_patch("/orders/{order_id}", self._ctl_update)
        app.router.add_delete("/orders/{order_id}", self._ctl_remove)
        app.router.add_post("/orders/{order_id}/state", self._ctl_state)
        app.router.add_post("/orders/{order_id}/rotate", self._ctl_rotate)
        app.router.add_post("/tokens/expire", self._ctl_expire)

    async def _ctl_stats(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "orders": len(self._orders),
                "tokens_issued": self.tokens_issued,
                "valid_tokens": self.valid_tokens,
                "states": {s: self._stats[s] for s in STATES},
            }
        )

    async def _ctl_add(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return json_response({"detail": "expected a JSON object"}, status=400)
        args: dict[str, Any] = {
            "order_id": body.pop("order_id", None),
            "state": body.pop("state", body.pop("order_state", "In Progress")),
            "project_id": body.pop("project_id", DEFAULT_PROJECT_ID),
            "title": body.pop("title", body.pop("order_title", None)),
            "tags": body.pop("tags", None),
        }
        if args["order_id"] in self._orders:
            return json_response({"detail": "order already exists"}, status=409)
        try:
            return json_response(self.add_order(**args, **body), status=201)
        except (TypeError, ValueError) as exc:
            return json_response({"detail": str(exc)}, status=400)

    async def _ctl_get(self, request: web.Request) -> web.Response:
        return self._ctl(request, lambda oid: self.get(oid))

    async def _ctl_update(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return json_response({"detail": "expected a JSON object"}, status=400)
        return self._ctl(request, lambda oid: self.update(oid, **body))

    async def _ctl_state(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        state = body.get("state") if isinstance(body, dict) else None
        return self._ctl(request, lambda oid: self.set_state(oid, str(state)))

    async def _ctl_rotate(self, request: web.Request) -> web.Response:
        def rotate(order_id: str) -> dict[str, Any]:
            self.rotate_presigned_urls(order_id)
            return self.get(order_id)

        return self._ctl(request, rotate)

    async def _ctl_remove(self, request: web.Request) -> web.Response:
        def remove(order_id: str) -> dict[str, Any]:
            self.remove(order_id)
            return {"ok": True}

        return self._ctl(request, remove)

    async def _ctl_expire(self, request: web.Request) -> web.Response:
        self.expire_tokens()
        return json_response({"ok": True})

    def _ctl(self, request: web.Request, action: Callable[[str], Any]) -> web.Response:
        order_id = request.match_info["order_id"]
        if order_id not in self._orders:
            return json_response({"detail": "Order not found"}, status=404)
        try:
            return json_response(action(order_id))
        except (TypeError, ValueError) as exc:
            return json_response({"detail": str(exc)}, status=400)


async def _json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
