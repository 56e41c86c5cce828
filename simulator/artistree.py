"""Artistree Human's stand-in (seeds 000_*, 001_*): OAuth2 client credentials, one order,
the paginated order list, presigned URLs that change on every answer, and a scripted
progression of order states for the demo.

Orders are stored compactly (a slotted record plus the fields a test or the progression
changed) and rendered to the seed's full shape on each answer, so that 100,000 orders fit
in a few tens of megabytes. The heavy, never-changing parts (analysis lines, annotations,
layer names) come from a small pool of variants shared by many orders.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import random
import secrets
import time
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from simulator.artistree_catalogue import (
    ADJECTIVES,
    DEFAULT_PROJECT_ID,
    FORMATS,
    NOUNS,
    PROJECTS,
    REVIEWERS,
    TAGS,
    VARIANTS,
    Presigner,
    annotation,
    iso,
    uuid_from,
)
from simulator.core import SimProvider, json_response

__all__ = [
    "ALL_PROJECTS",
    "DEFAULT_PROJECT_ID",
    "ORDER_FIELDS",
    "PERSONAL",
    "STATES",
    "ArtistreeSim",
]

STATES = ("In Progress", "Human Certified", "Action Required", "Reviewed", "Failed", "Unsupported File")
OPEN_STATES = frozenset({"In Progress", "Action Required", "Reviewed"})
ALL_PROJECTS = "All Projects"
PERSONAL = "Personal Certificates"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 200

ORDER_FIELDS = (
    "order_id",
    "username",
    "email",
    "order_state",
    "order_title",
    "asset_id",
    "asset_name",
    "asset_last_modified_timestamp",
    "ordered_by",
    "creation_time",
    "asset_preview_url",
    "analysis_list",
    "analysis_failed_items",
    "tags",
    "confidence",
    "remediation",
    "annotations",
    "project",
    "reviewed_by",
    "review_timestamp",
    "layers_info",
)
"""Every field of the seed's order, in the seed's order."""

_STAT_KEYS = {
    "In Progress": "total_in_progress",
    "Human Certified": "total_certified",
    "Action Required": "total_action_required",
    "Reviewed": "total_reviewed",
    "Failed": "total_failed",
    "Unsupported File": "total_unsupported",
}
_UPDATABLE = frozenset(ORDER_FIELDS) - {"order_id", "project"}

@dataclass(slots=True)
class _Order:
    order_id: str
    seq: int
    state: str
    title: str
    project_id: str | None
    variant: int
    created: int
    tags: tuple[str, ...] | list[str]
    extra: dict[str, Any] | None = None
    url_epoch: int = 0


@dataclass(slots=True)
class _Scope:
    """The orders of one project (or of the personal certificates), by insertion sequence."""

    seqs: list[int] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Project:
    id: str
    name: str
    user_role: str
    scope: _Scope = field(default_factory=_Scope)


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


class ArtistreeSim(SimProvider):
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
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.tokens_issued = 0
        self.rng = random.Random(seed)
        self._tokens: dict[str, float] = {}
        self._presigner = Presigner()
        self._orders: dict[str, _Order] = {}
        self._slots: list[_Order | None] = []
        self._stats: Counter[str] = Counter()
        self._personal = _Scope()
        self._projects: dict[str, _Project] = {pid: _Project(pid, name, role) for pid, name, role in PROJECTS}

    # ---- Python API for tests, benchmarks and the demo --------------------------------

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    @property
    def order_ids(self) -> list[str]:
        return list(self._orders)

    def add_order(
        self,
        order_id: str | None = None,
        *,
        state: str = "In Progress",
        project_id: str | None = DEFAULT_PROJECT_ID,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Add an order (project_id None: a personal certificate); returns it as the API would."""
        if order_id is not None and order_id in self._orders:
            raise ValueError(f"order {order_id} already exists")
        _check_fields(fields)
        order = self._insert(order_id, state, project_id, title, tags)
        if fields:
            return self.update(order.order_id, **fields)
        return self.get(order.order_id)

    def add_many(self, n: int, *, project_id: str | None = DEFAULT_PROJECT_ID, state: str = "In Progress") -> list[str]:
        """Add `n` orders quickly (about 3 µs each); returns their ids."""
        return [self._insert(None, state, project_id, None, None).order_id for _ in range(n)]

    def get(self, order_id: str) -> dict[str, Any]:
        """The order as the API answers it now (a private copy)."""
        copy: dict[str, Any] = orjson.loads(orjson.dumps(self._render(self._orders[order_id])))
        return copy

    def state_of(self, order_id: str) -> str:
        return self._orders[order_id].state

    def set_state(self, order_id: str, state: str) -> dict[str, Any]:
        """Change only `order_state` (use `update` for the fields that go with it)."""
        self._set_state(self._orders[order_id], state)
        return self.get(order_id)

    def update(self, order_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields of an order, e.g. reviewed_by, analysis_failed_items, annotations."""
        order = self._orders[order_id]
        _check_fields(fields)
        if "order_state" in fields:
            self._set_state(order, fields.pop("order_state"))
        if "order_title" in fields:
            order.title = str(fields.pop("order_title"))
        if "tags" in fields:
            order.tags = [str(t) for t in fields.pop("tags")]
        if fields:
            order.extra = {**(order.extra or {}), **orjson.loads(orjson.dumps(fields))}
        return self.get(order_id)

    def rotate_presigned_urls(self, order_id: str) -> None:
        """Move the order's assets to a new key and credential (URLs change anyway per answer)."""
        self._orders[order_id].url_epoch += 1

    def remove(self, order_id: str) -> None:
        order = self._orders.pop(order_id)
        self._slots[order.seq] = None
        self._stats[order.state] -= 1
        self._scope(order.project_id).stats[order.state] -= 1

    def expire_tokens(self) -> None:
        """Every token issued so far stops working: the next request gets 401."""
        self._tokens.clear()

    @property
    def valid_tokens(self) -> int:
        now = time.monotonic()
        return sum(1 for expires in self._tokens.values() if expires > now)

    # ---- storage ---------------------------------------------------------------------

    def _scope(self, project_id: str | None) -> _Scope:
        if project_id is None:
            return self._personal
        project = self._projects.get(project_id)
        if project is None:
            project = self._projects[project_id] = _Project(project_id, f"Project {project_id[:8]}", "member")
        return project.scope

    def _insert(
        self, order_id: str | None, state: str, project_id: str | None, title: str | None, tags: Sequence[str] | None
    ) -> _Order:
        if state not in _STAT_KEYS:
            raise ValueError(f"unknown order_state {state!r}")
        rng = self.rng
        bits = rng.getrandbits(32)
        if title is None:
            title = (
                f"{ADJECTIVES[bits & 15]} {NOUNS[(bits >> 4) & 15]} "
                f"{FORMATS[(bits >> 8) & 7]} v{(bits >> 11) % 5 + 1}"
            )
        order = _Order(
            order_id=order_id or str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            seq=len(self._slots),
            state=state,
            title=title,
            project_id=project_id,
            variant=(bits >> 14) % len(VARIANTS),
            created=int(time.time()) - (bits >> 19) % (30 * 86400),
            tags=list(tags) if tags is not None else TAGS[(bits >> 24) % len(TAGS)],
        )
        scope = self._scope(project_id)
        self._orders[order.order_id] = order
        self._slots.append(order)
        scope.seqs.append(order.seq)
        scope.stats[state] += 1
        self._stats[state] += 1
        return order

    def _set_state(self, order: _Order, state: str) -> None:
        if state not in _STAT_KEYS:
            raise ValueError(f"unknown order_state {state!r}")
        scope = self._scope(order.project_id)
        for stats in (self._stats, scope.stats):
            stats[order.state] -= 1
            stats[state] += 1
        order.state = state

    def _field(self, order: _Order, name: str, default: Any) -> Any:
        return order.extra[name] if order.extra and name in order.extra else default

    def _render(self, order: _Order) -> dict[str, Any]:
        v = VARIANTS[order.variant]
        username, email, ordered_by = v.user
        oid, epoch = order.order_id, order.url_epoch
        stem = order.title.lower().replace(" ", "_")
        keys = [f"orders/{oid}/v{epoch}/layers/{i:02d}.png" for i in range(len(v.layer_names))]
        keys.append(f"orders/{oid}/v{epoch}/preview.webp")
        urls = self._presigner.urls(keys, epoch)
        project = self._projects[order.project_id] if order.project_id is not None else None
        rendered: dict[str, Any] = {
            "order_id": oid,
            "username": username,
            "email": email,
            "order_state": order.state,
            "order_title": order.title,
            "asset_id": uuid_from(oid),
            "asset_name": stem + v.extension,
            "asset_last_modified_timestamp": str(order.created - 5400),
            "ordered_by": ordered_by,
            "creation_time": iso(order.created),
            "asset_preview_url": None if order.state == "Unsupported File" else urls[-1],
            "analysis_list": v.analysis_list,
            "analysis_failed_items": [],
            "tags": list(order.tags),
            "confidence": v.confidence,
            "remediation": v.remediation,
            "annotations": v.annotations,
            "project": {"id": project.id, "name": project.name, "userRole": project.user_role} if project else None,
            "reviewed_by": None,
            "review_timestamp": None,
            "layers_info": [
                {"layer_name": name, "layer_url": url} for name, url in zip(v.layer_names, urls, strict=False)
            ],
        }
        if order.extra:
            rendered.update(order.extra)
        return rendered

    def _preview(self, order: _Order) -> dict[str, Any]:
        project = self._projects[order.project_id] if order.project_id is not None else None
        return {
            "order_id": order.order_id,
            "order_title": order.title,
            "creation_time": iso(order.created),
            "order_state": order.state,
            "asset_preview_url": None
            if order.state == "Unsupported File"
            else self._presigner.urls([f"orders/{order.order_id}/v{order.url_epoch}/preview.webp"], order.url_epoch)[0],
            "project_name": project.name if project else PERSONAL,
            "analysis_list": self._field(order, "analysis_list", VARIANTS[order.variant].analysis_list),
            "tags": list(order.tags),
        }

    def _page(self, seqs: Sequence[int] | None, start: int, limit: int) -> tuple[list[_Order], int | None]:
        """Up to `limit` live orders from sequence `start`, and where the next page starts."""
        slots = self._slots
        if seqs is None:
            seqs = range(len(slots))
        out: list[_Order] = []
        for i in range(bisect_left(seqs, start), len(seqs)):
            order = slots[seqs[i]]
            if order is None:
                continue
            if len(out) == limit:
                return out, order.seq
            out.append(order)
        return out, None

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
                else (self._projects[project_id].scope if project_id in self._projects else _Scope())
            )
            seqs, stats, names = scope.seqs, scope.stats, []
        orders, next_seq = self._page(seqs, start, limit)
        order_stats = {key: stats[state] for state, key in _STAT_KEYS.items()}
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

    # ---- scripted progression --------------------------------------------------------

    def step(self, rng: random.Random) -> list[str]:
        """Move one to three open orders along a plausible path; sometimes (and always when
        nothing is open) a new order arrives, so that a long demo never runs dry."""
        lines: list[str] = []
        moved: set[str] = set()
        for _ in range(rng.randint(1, 3)):
            order = self._pick_open(rng, moved)
            if order is None:
                break
            moved.add(order.order_id)
            lines.append(self._advance(order, rng))
        if not moved or rng.random() < 0.25:
            new = self._insert(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "In Progress",
                rng.choice([*list(self._projects), None]),
                None,
                None,
            )
            lines.append(f"artistree: new order “{new.title}” ({new.order_id[:8]}) In Progress")
        return lines

    def _pick_open(self, rng: random.Random, exclude: set[str]) -> _Order | None:
        for _ in range(32 if self._slots else 0):
            order = self._slots[rng.randrange(len(self._slots))]
            if order is not None and order.state in OPEN_STATES and order.order_id not in exclude:
                return order
        candidates = [o for o in self._orders.values() if o.state in OPEN_STATES and o.order_id not in exclude]
        return rng.choice(candidates) if candidates else None

    def _advance(self, order: _Order, rng: random.Random) -> str:
        was = order.state
        states, weights = zip(*_NEXT[was], strict=True)
        now = rng.choices(states, weights)[0]
        v = VARIANTS[order.variant]
        fields: dict[str, Any] = {}
        extra = ""
        if now == "Human Certified":
            analyses = self._field(order, "analysis_list", v.analysis_list)
            fields = {
                "confidence": round(rng.uniform(0.9, 0.99), 2),
                "remediation": 0.0,
                "analysis_list": [{**a, "analysis_passed": True} for a in analyses],
            }
        elif now == "Failed":
            failed = [*self._field(order, "analysis_failed_items", []), rng.choice(v.layer_names)]
            analyses = self._field(order, "analysis_list", v.analysis_list)
            fields = {
                "analysis_failed_items": failed,
                "confidence": round(rng.uniform(0.1, 0.5), 2),
                "analysis_list": [{**a, "analysis_passed": i != 0} for i, a in enumerate(analyses)],
            }
            extra = f" (analysis failed: {failed[-1]})"
        elif now == "Action Required":
            notes = [*self._field(order, "annotations", v.annotations), annotation(rng, needs_remediation=True)]
            fields = {"annotations": notes, "remediation": 1.0}
            extra = " (an annotation needs remediation)"
        elif now == "Reviewed":
            reviewer = rng.choice(REVIEWERS)
            fields = {"reviewed_by": reviewer, "review_timestamp": iso(time.time())}
            extra = f" (reviewed by {reviewer})"
        elif now == "In Progress":
            fields = {"remediation": 0.5}
            extra = " (resubmitted)"
        self._set_state(order, now)
        if fields:
            self.update(order.order_id, **fields)
        return f"artistree: “{order.title}” ({order.order_id[:8]}) {was} → {now}{extra}"


_NEXT: dict[str, list[tuple[str, float]]] = {
    "In Progress": [
        ("Human Certified", 40),
        ("Action Required", 20),
        ("Failed", 15),
        ("Reviewed", 15),
        ("Unsupported File", 5),
    ],
    "Action Required": [("In Progress", 60), ("Reviewed", 25), ("Failed", 15)],
    "Reviewed": [("Human Certified", 60), ("Failed", 20), ("Action Required", 20)],
}
"""Where an open order can go next, with weights."""


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot set {sorted(unknown)} on an order")


async def _json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
