"""The watch routes of the HTTP API: POST, GET and DELETE /v1/watches, and the validation
of a watch request that `statehook watch` shares."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

import providers as provider_registry
from config import Config
from config.schema import WatchSpec
from model.resources import ResourceRef
from store.reads import Reads, Unreadable
from store.snapshots import Store, WatchMeta
from worker import api_models as models
from worker.api_http import answer, error, json_body, query_of, start_deadline, state_of
from worker.api_models import UnwatchFields, WatchFields

__all__ = [
    "InvalidWatch",
    "add_watches",
    "forget_watches",
    "list_watches",
    "meta_view",
    "remove_watches",
    "validate_unwatch",
    "validate_watch",
]

log = logging.getLogger("statehook.api")


class InvalidWatch(ValueError):
    """A watch request that does not match the document; `detail` says what, for the caller
    (`problems`: each field and its problem)."""

    def __init__(self, reason: str, **detail: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _shown(value: str) -> str:
    """A caller's value in a refusal, cut short."""
    return repr(value if len(value) <= 64 else value[:64] + "…")


def _provider_of(config: Config, data: Mapping[str, Any]) -> str:
    """The request's provider when it is a known, configured one; else InvalidWatch."""
    provider = data.get("provider")
    if provider is None:
        raise InvalidWatch("invalid watch request", problems=[{"field": "provider", "problem": "Field required"}])
    if not isinstance(provider, str) or provider not in provider_registry.REGISTRY:
        shown = _shown(provider) if isinstance(provider, str) else f"of type {type(provider).__name__}"
        raise InvalidWatch(f"unknown provider {shown}", known=sorted(provider_registry.REGISTRY))
    if provider not in config.providers:
        raise InvalidWatch(f"provider {provider!r} is not configured", configured=sorted(config.providers))
    kind = data.get("kind")
    if isinstance(kind, str) and kind not in models.id_kinds(provider):
        raise InvalidWatch(f"{provider} has no kind {_shown(kind)} to watch by id",
                           known=list(models.id_kinds(provider)))
    return provider


def _validated(model: type[BaseModel], data: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidWatch("invalid watch request", problems=models.problems(exc)) from None


def validate_watch(config: Config, data: Mapping[str, Any]) -> tuple[WatchFields, str]:
    """The validated request and the resource kind. Raises InvalidWatch. Shared by the API
    and the CLI: a provider must be known and configured, the kind one it watches by id
    (what the document's union of the configured providers' models says)."""
    provider = _provider_of(config, data)
    req: WatchFields = _validated(models.watch_model(provider), data)
    return req, req.kind or provider_registry.REGISTRY[provider].default_kind


def validate_unwatch(config: Config, data: Mapping[str, Any]) -> list[str]:
    """The rkeys a DELETE body names. Raises InvalidWatch."""
    provider = _provider_of(config, data)
    req: UnwatchFields = _validated(models.unwatch_model(provider), data)
    kind = req.kind or provider_registry.REGISTRY[provider].default_kind
    return [ResourceRef(provider, kind, rid).key for rid in req.ids]


def _refused(exc: InvalidWatch) -> web.Response:
    problems = exc.detail.get("problems")
    reason = f"{exc.reason}: {models.one_line(problems)}" if problems else exc.reason
    return error(400, reason, **exc.detail)


async def add_watches(request: web.Request) -> web.Response:
    st = state_of(request)
    data = await json_body(request)
    if isinstance(data, web.Response):
        return data
    try:
        req, kind = validate_watch(st.config, data)
    except InvalidWatch as exc:
        return _refused(exc)
    interval = float(req.interval or WatchSpec.model_fields["interval"].default)
    meta = WatchMeta(interval=interval, discovered=req.discovered, source="api", stall_after=req.stall_after)
    rkeys = list(dict.fromkeys(ResourceRef(req.provider, kind, rid).key for rid in req.ids))
    added = await st.store.add_watches((rkey, meta) for rkey in rkeys)
    log.info("api: %d watches registered for %s (%d new)", len(rkeys), req.provider, added)
    return answer(models.WatchResult(provider=req.provider, kind=kind, interval=interval, watched=len(rkeys),
                                     added=added, rkeys=rkeys), status=201 if added else 200)


async def remove_watches(request: web.Request) -> web.Response:
    """The resources of `?rkey=` (repeated) and those of the body, if there is one."""
    st = state_of(request)
    query = query_of(request, models.UnwatchQuery)
    if isinstance(query, web.Response):
        return query
    rkeys = list(query.rkey)
    if request.can_read_body:
        data = await json_body(request)
        if isinstance(data, web.Response):
            return data
        try:
            rkeys += validate_unwatch(st.config, data)
        except InvalidWatch as exc:
            return _refused(exc)
    else:
        start_deadline(request)
    removed = await forget_watches(st.store, rkeys)
    log.info("api: %d watches removed", removed)
    return answer(models.Removed(removed=removed, rkeys=rkeys))


async def forget_watches(store: Store, rkeys: list[str]) -> int:
    """Remove watches; returns how many were watched. (`Store.remove_watches` counts what
    left the due set, which a finished resource already had.)"""
    rkeys = list(dict.fromkeys(rkeys))
    if not rkeys:
        return 0
    watched = await Reads(store.redis).watched(rkeys)
    await store.remove_watches(rkeys)
    return watched


def meta_view(meta: WatchMeta) -> dict[str, Any]:
    return {"interval": meta.interval, "discovered": meta.discovered, "scan": meta.scan, "source": meta.source,
            "stall_after": meta.stall_after}


async def list_watches(request: web.Request) -> web.Response:
    """A page of at most `limit` watches (pass `cursor` back for the next: store/watch_cursor.py)."""
    st = state_of(request)
    query = query_of(request, models.WatchesQuery)
    if isinstance(query, web.Response):
        return query
    bad = Unreadable()
    page = await st.reads.watch_page(bad, provider=query.provider, source=query.source,
                                     cursor=query.watch_cursor, limit=query.limit)
    watches = [models.Watch(rkey=w.rkey, **meta_view(w.meta), due_at=w.due_at) for w in page.watches]
    await bad.report(st.redis)
    return answer(models.Watches(watches=watches, cursor=page.cursor.token() if page.cursor else None))

