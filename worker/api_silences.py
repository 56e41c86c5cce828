"""The silence routes of the HTTP API (bearer, like every management call):

    GET  /v1/silences[?state=pending|active|expired]   list, oldest first
    POST /v1/silences                                   create (`dry_run`: only the preview)
    GET  /v1/silences/{id}                              one
    POST /v1/silences/{id}/extend                       a new end
    POST /v1/silences/{id}/expire                       end it now

A create answers 201 with the silence and what it would have muted among the last 24 h of
events (per event and destination); a dry run 200 with the same and no silence stored. 409
is a refusal that depends on the clock or on recent events rather than on the body's shape:
an end in the past or beyond `silences.max_duration`, an expired silence extended, or a
silence that mutes every recent event (or has no matcher) without `"force": true`. The
work itself is worker/silence_ops.py, which `statehook silence` shares."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from core.silences import Preview
from model.events import Severity
from model.silences import Silence, SilenceMatch, SilenceState
from store.silences import SilenceStore
from worker.api_fields import Interval, absent
from worker.api_http import answer, error, json_body, query_of, state_of, validated
from worker.silence_ops import (
    SilenceRefused,
    create_silence,
    expire_silence,
    extend_silence,
    iso,
    list_silences,
)

__all__ = [
    "PREVIEW_LISTED",
    "PreviewedDelivery",
    "SilenceCreated",
    "SilenceExtension",
    "SilencePath",
    "SilencePreview",
    "SilenceRequest",
    "SilenceView",
    "Silences",
    "SilencesQuery",
    "create",
    "expire",
    "extend",
    "get_one",
    "list_all",
    "preview_of",
    "silence_routes",
    "view_of",
]

PREVIEW_LISTED = 100
"""Muted deliveries listed in a preview (the counts say how many there were)."""


def _seconds(value: datetime) -> float:
    """Unix seconds; a time too far out for the platform is taken as far past or far future."""
    try:
        return value.timestamp()
    except (OverflowError, ValueError, OSError):
        return float("inf") if value.year > 1970 else float("-inf")


_ONE_END: JsonDict = {"oneOf": [{"required": ["ends_at"]}, {"required": ["duration"]}]}


def _given(value: object) -> object:
    if value is None:
        raise ValueError("leave it out rather than null")
    return value


def _text(value: object) -> object:
    """A time as the document has it: RFC 3339 text (not a number of seconds)."""
    if value is not None and not isinstance(value, str):
        raise ValueError("a time is RFC 3339 text, e.g. 2026-11-23T10:00:00Z")
    return value


Time = Annotated[AwareDatetime, BeforeValidator(_text)]


class SilenceMatchers(SilenceMatch):
    """Every given field must match; a list matches when any of its values does. `type` takes
    globs, `state` ignores case, `tags` matches when the event has any of them,
    `destination` names the destinations muted (all of them when not given)."""

    @model_validator(mode="before")
    @classmethod
    def _scalars_to_lists(cls, data: Any) -> Any:
        return data


class _End(BaseModel):
    """The end of a silence: `ends_at`, or `duration` from now; exactly one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_END)

    ends_at: Annotated[Time | SkipJsonSchema[None], BeforeValidator(_given)] = absent()
    duration: Annotated[Interval | SkipJsonSchema[None], BeforeValidator(_given)] = absent(
        "from now (at most 30d here; ends_at may go to silences.max_duration)")

    @model_validator(mode="after")
    def _one_end(self) -> _End:
        if (self.ends_at is None) == (self.duration is None):
            raise ValueError("give the end as ends_at or as duration (one of them)")
        return self


class SilenceRequest(_End):
    """The body of POST /v1/silences. The end is `ends_at` or `duration` (from now), one of them."""

    match: SilenceMatchers = Field(default_factory=SilenceMatchers)
    starts_at: Annotated[Time | None, BeforeValidator(_text)] = Field(default=None, description="none: now")
    author: Annotated[str, StringConstraints(max_length=200)] = ""
    comment: Annotated[str, StringConstraints(max_length=2000)] = ""
    dry_run: StrictBool = Field(default=False, description="only the preview: nothing is stored")
    force: StrictBool = Field(default=False, description="create it even if it mutes every recent event")


class SilenceExtension(_End):
    """The body of POST /v1/silences/{id}/extend: the new end, `ends_at` or `duration` from now."""


class SilenceView(BaseModel):
    id: str | None = Field(description="none for a dry run")
    state: Literal["pending", "active", "expired"]
    match: dict[str, list[str]] = Field(description="the matchers given")
    starts_at: str
    ends_at: str
    author: str
    comment: str
    created_at: str


class Silences(BaseModel):
    silences: list[SilenceView]


class PreviewedDelivery(BaseModel):
    event_id: str
    type: str
    rkey: str
    state: str | None
    severity: Severity
    detected_at: str
    destination: str


class SilencePreview(BaseModel):
    events: int = Field(description="events of the last 24 h looked at")
    muted_events: int = Field(description="of those, muted on every destination they went to")
    muted_deliveries: int
    deliveries: list[PreviewedDelivery] = Field(description=f"the first {PREVIEW_LISTED} muted deliveries")
    needs_force: str | None = Field(description="why it mutes everything, when it does")


class SilenceCreated(BaseModel):
    silence: SilenceView
    created: bool
    preview: SilencePreview


class SilencesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["pending", "active", "expired"] | None = absent("only silences in this state")


class SilencePath(BaseModel):
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="sil_ and 16 hex digits (any other is not found)")


def view_of(silence: Silence, now: float, *, stored: bool = True) -> SilenceView:
    return SilenceView(id=silence.id if stored else None, state=silence.state(now).value,
                       match=silence.match.given(), starts_at=iso(silence.starts_at), ends_at=iso(silence.ends_at),
                       author=silence.author, comment=silence.comment, created_at=iso(silence.created_at))


def preview_of(found: Preview, needs_force: str | None) -> SilencePreview:
    listed = [PreviewedDelivery(event_id=f.id, type=f.type, rkey=f.rkey, state=f.state, severity=f.severity,
                                detected_at=f.detected_at, destination=d) for f, d in found.muted[:PREVIEW_LISTED]]
    return SilencePreview(events=found.events, muted_events=found.muted_events, muted_deliveries=len(found.muted),
                          deliveries=listed, needs_force=needs_force)


def _silence_id(request: web.Request) -> str | web.Response:
    path = validated(SilencePath, {"id": request.match_info["id"]}, "silence id")
    return path if isinstance(path, web.Response) else path.id


def silence_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/silences", list_all)
    router.add_post("/v1/silences", create)
    router.add_get("/v1/silences/{id}", get_one)
    router.add_post("/v1/silences/{id}/extend", extend)
    router.add_post("/v1/silences/{id}/expire", expire)


async def list_all(request: web.Request) -> web.Response:
    query = query_of(request, SilencesQuery)
    if isinstance(query, web.Response):
        return query
    now = time.time()
    states = None if query.state is None else {SilenceState(query.state)}
    found = await list_silences(state_of(request).redis, now=now, states=states)
    return answer(Silences(silences=[view_of(s, now) for s in found]))


async def create(request: web.Request) -> web.Response:
    data = await json_body(request)
    if isinstance(data, web.Response):
        return data
    body = validated(SilenceRequest, data, "silence")
    if isinstance(body, web.Response):
        return body
    state = state_of(request)
    now = time.time()
    ends = _seconds(body.ends_at) if body.ends_at is not None else now + (body.duration or 0.0)
    try:
        made = await create_silence(
            state.redis, body.match, starts_at=now if body.starts_at is None else _seconds(body.starts_at),
            ends_at=ends, author=body.author, comment=body.comment, now=now,
            max_duration=state.config.settings.silences.max_duration, destinations=state.config.destinations,
            force=body.force, dry_run=body.dry_run)
    except SilenceRefused as exc:
        hint = '; add a matcher, or send "force": true' if exc.needs_force else ""
        return error(exc.status, exc.reason + hint)
    out = SilenceCreated(silence=view_of(made.silence, now, stored=made.created), created=made.created,
                         preview=preview_of(made.preview, made.needs_force))
    return answer(out, 201 if made.created else 200)


async def get_one(request: web.Request) -> web.Response:
    silence_id = _silence_id(request)
    if isinstance(silence_id, web.Response):
        return silence_id
    found = await SilenceStore(state_of(request).redis).get(silence_id)
    if found is None:
        return error(404, f"no silence {silence_id}")
    return answer(view_of(found, time.time()))


async def extend(request: web.Request) -> web.Response:
    silence_id = _silence_id(request)
    if isinstance(silence_id, web.Response):
        return silence_id
    data = await json_body(request)
    if isinstance(data, web.Response):
        return data
    body = validated(SilenceExtension, data, "silence")
    if isinstance(body, web.Response):
        return body
    state = state_of(request)
    now = time.time()
    ends = _seconds(body.ends_at) if body.ends_at is not None else now + (body.duration or 0.0)
    try:
        changed = await extend_silence(state.redis, silence_id, ends, now=now,
                                       max_duration=state.config.settings.silences.max_duration)
    except SilenceRefused as exc:
        return error(exc.status, exc.reason)
    return answer(view_of(changed, now))


async def expire(request: web.Request) -> web.Response:
    silence_id = _silence_id(request)
    if isinstance(silence_id, web.Response):
        return silence_id
    now = time.time()
    try:
        changed = await expire_silence(state_of(request).redis, silence_id, now=now)
    except SilenceRefused as exc:
        return error(exc.status, exc.reason)
    return answer(view_of(changed, now))
