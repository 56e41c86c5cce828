"""The watches: a searchable list paginated by cursor (HSCAN of the watch hash, so a page
costs the same with 100 watches or 100,000), and adding and removing watches through the
API's own validation and store calls."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import ValidationError

import providers as provider_registry
from config.schema import WatchSpec
from model.resources import ResourceRef
from store.reads import ResourceRow, Unreadable, WatchEntry
from store.snapshots import WatchMeta
from worker import api_models as models
from worker.api_watches import InvalidWatch, forget_watches, validate_watch
from worker.console.session import Flash
from worker.console.state import BASE, ConsoleState, console_of, form_of, page, query_model, see_other

__all__ = ["PAGE_SIZE", "add_watch", "remove_watch", "watches"]

log = logging.getLogger("statehook.console")

PAGE_SIZE = 50
MAX_SEARCH = 200
_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class WatchRow:
    rkey: str
    provider: str
    kind: str
    id: str
    state: str | None
    changed_at: float | None
    due_at: float | None
    source: str
    interval: float
    errors: int


def state_label(cs: ConsoleState, ref: ResourceRef, snapshot: dict[str, Any] | None) -> str | None:
    """The resource's state as its provider names it (`describe`), or None."""
    spec = cs.specs.get(ref.provider)
    if spec is None or snapshot is None or ref.kind == "scan":
        return None
    try:
        return spec.describe(ref, snapshot).state
    except Exception:  # a snapshot of an older shape: no state shown, the page still answers
        return None


def _row(cs: ConsoleState, watch: WatchEntry, row: ResourceRow) -> WatchRow:
    ref = ResourceRef.parse(watch.rkey)
    return WatchRow(
        rkey=watch.rkey, provider=ref.provider, kind=ref.kind, id=ref.id,
        state=state_label(cs, ref, row.snapshot), changed_at=row.state.changed_at if row.state else None,
        due_at=watch.due_at, source=watch.meta.source, interval=watch.meta.interval, errors=row.consecutive_errors)


async def watches(request: web.Request) -> web.Response:
    cs = console_of(request)
    st = cs.api
    search = request.query.get("q", "").strip()[:MAX_SEARCH]
    query = query_model(request, models.WatchesQuery, limit=PAGE_SIZE)
    bad = Unreadable()
    found = await st.reads.watch_page(bad, provider=query.provider, source=query.source,
                                      cursor=query.watch_cursor, limit=PAGE_SIZE, contains=search or None)
    entries = [w for w in found.watches if _parses(w.rkey)]
    next_cursor = found.cursor.token() if found.cursor else None
    rows = await st.reads.resource_rows(bad, [w.rkey for w in entries])
    await bad.report(st.redis)
    items = sorted((_row(cs, w, r) for w, r in zip(entries, rows, strict=True)), key=lambda r: r.rkey)
    providers = sorted(st.config.providers)
    return page(
        request, "watches.html.j2", title="Watches", nav="watches", rows=items, search=search,
        provider=query.provider or "", source=query.source or "", next_cursor=next_cursor,
        first_page=query.watch_cursor.start, providers=providers,
        kinds={p: models.id_kinds(p) for p in providers if p in provider_registry.REGISTRY},
    )


def _parses(rkey: str) -> bool:
    try:
        ResourceRef.parse(rkey)
    except ValueError:
        return False
    return True


def _watch_request(form: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"provider": form.get("provider") or None,
                            "ids": [i for i in _SPLIT.split(str(form.get("ids") or "")) if i]}
    if form.get("kind"):
        data["kind"] = form.get("kind")
    if form.get("interval"):
        data["interval"] = str(form.get("interval")).strip()
    if form.get("discovered"):
        data["discovered"] = True
    return data


async def add_watch(request: web.Request) -> web.Response:
    """Register watches as POST /v1/watches does (its validation, source "api")."""
    st = console_of(request).api
    try:
        req, kind = validate_watch(st.config, _watch_request(form_of(request)))
    except InvalidWatch as exc:
        problems = exc.detail.get("problems")
        why = f"{exc.reason}: {models.one_line(problems)}" if problems else exc.reason
        return see_other(request, BASE + "/watches", Flash("error", f"Not added: {why}"))
    interval = float(req.interval or WatchSpec.model_fields["interval"].default)
    meta = WatchMeta(interval=interval, discovered=req.discovered, source="api")
    rkeys = list(dict.fromkeys(ResourceRef(req.provider, kind, rid).key for rid in req.ids))
    added = await st.store.add_watches((rkey, meta) for rkey in rkeys)
    log.info("console: %d watches registered for %s (%d new)", len(rkeys), req.provider, added)
    return see_other(request, BASE + "/watches",
                     Flash("ok", f"{len(rkeys)} watch(es) of {req.provider} registered, {added} new."))


async def remove_watch(request: web.Request) -> web.Response:
    """Forget watches, as DELETE /v1/watches does. A watch from the config file comes back
    when a worker starts (the file is registered again)."""
    st = console_of(request).api
    rkeys = [r for r in form_of(request).getall("rkey", []) if isinstance(r, str)]
    try:
        for rkey in rkeys:
            models.ResourcePath(rkey=rkey)
    except ValidationError:
        return see_other(request, BASE + "/watches", Flash("error", "Not removed: not a resource key"))
    removed = await forget_watches(st.store, rkeys)
    log.info("console: %d watches removed", removed)
    back = form_of(request).get("back")
    return see_other(request, back if isinstance(back, str) else BASE + "/watches",
                     Flash("ok", f"{removed} watch(es) removed."))
