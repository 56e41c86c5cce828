"""Silences: the list (active and pending, or all that are kept), a new silence shown first as
its preview (what it would have muted among the last 24 h of events, per event and
destination) and then created, extended and expired, through `statehook silence`'s own
operations (worker/silence_ops.py)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from core.silences import parse_matchers, parse_when
from model.silences import MATCHER_KEYS, SilenceMatch, SilenceState
from worker.console.render import page_url
from worker.console.session import Flash
from worker.console.state import BASE, console_of, form_of, page, see_other
from worker.silence_ops import SilenceRefused, create_silence, expire_silence, extend_silence, iso, list_silences

__all__ = ["PREVIEW_SHOWN", "create", "expire", "extend", "new_silence", "silences"]

log = logging.getLogger("statehook.console")

PREVIEW_SHOWN = 200
"""muted deliveries listed in a preview (the counts say how many there were)"""
FIELDS = ("matchers", "starts", "ends", "author", "comment")
_SHOWN = {"active": {SilenceState.ACTIVE, SilenceState.PENDING}, "all": None}


def _text(values: Any, name: str, limit: int = 2000) -> str:
    value = values.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _draft(values: Any) -> dict[str, str]:
    """The new silence's fields as typed (shown again in the form)."""
    draft = {name: _text(values, name) for name in FIELDS}
    draft["starts"] = draft["starts"] or "now"
    draft["ends"] = draft["ends"] or "2h"
    return draft


def _parsed(draft: dict[str, str], now: float) -> tuple[SilenceMatch, float, float]:
    """Matchers (one key=value a line), start and end; ValueError in one line."""
    lines = [line for line in draft["matchers"].splitlines() if line.strip()]
    try:
        match = parse_matchers(lines)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"matcher {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    return match, parse_when(draft["starts"], now), parse_when(draft["ends"], now)


async def silences(request: web.Request) -> web.Response:
    cs = console_of(request)
    now = cs.clock()
    shown = request.query.get("state", "active")
    states = _SHOWN.get(shown, _SHOWN["active"])
    found = await list_silences(cs.api.redis, now=now, states=states)
    rows = [{"silence": s, "state": s.state(now).value, "match": s.match.given()} for s in reversed(found)]
    return page(request, "silences.html.j2", title="Silences", nav="silences", rows=rows,
                shown="all" if states is None else "active", draft=_draft({}), keys=MATCHER_KEYS)


async def new_silence(request: web.Request) -> web.Response:
    """The preview: what the silence would mute (nothing is stored), and the form to create it."""
    cs = console_of(request)
    now = cs.clock()
    draft = _draft(request.query)
    problem, made = None, None
    if draft["matchers"] or "preview" in request.query:
        try:
            match, starts, ends = _parsed(draft, now)
            made = await create_silence(cs.api.redis, match, starts_at=starts, ends_at=ends, author=draft["author"],
                                        comment=draft["comment"], now=now, dry_run=True,
                                        max_duration=cs.api.config.settings.silences.max_duration,
                                        destinations=cs.api.config.destinations)
        except (ValueError, SilenceRefused) as exc:
            problem = exc.reason if isinstance(exc, SilenceRefused) else str(exc)
    return page(request, "silence_new.html.j2", title="New silence", nav="silences", draft=draft, made=made,
                problem=problem, keys=MATCHER_KEYS, shown_limit=PREVIEW_SHOWN)


async def create(request: web.Request) -> web.Response:
    cs = console_of(request)
    now = cs.clock()
    form = form_of(request)
    draft = _draft(form)
    back = page_url(BASE + "/silences/new", {**draft, "preview": "1"})
    try:
        match, starts, ends = _parsed(draft, now)
        made = await create_silence(cs.api.redis, match, starts_at=starts, ends_at=ends, author=draft["author"],
                                    comment=draft["comment"], now=now, force=form.get("force") == "yes",
                                    max_duration=cs.api.config.settings.silences.max_duration,
                                    destinations=cs.api.config.destinations)
    except SilenceRefused as exc:
        why = exc.reason + (" (tick “mute all of it anyway” to create it)" if exc.needs_force else "")
        return see_other(request, back, Flash("error", f"Not created: {why}"))
    except ValueError as exc:
        return see_other(request, back, Flash("error", f"Not created: {exc}"))
    log.info("console: silence %s created", made.silence.id)
    muted = len(made.preview.muted)
    done = f"Silence {made.silence.id} created (it would have muted {muted} deliveries of the last 24 h)."
    return see_other(request, BASE + "/silences", Flash("ok", done))


async def extend(request: web.Request) -> web.Response:
    cs = console_of(request)
    now = cs.clock()
    form = form_of(request)
    silence_id, ends = _text(form, "id", 64), _text(form, "ends", 64)
    try:
        changed = await extend_silence(cs.api.redis, silence_id, parse_when(ends, now), now=now,
                                       max_duration=cs.api.config.settings.silences.max_duration)
    except (ValueError, SilenceRefused) as exc:
        why = exc.reason if isinstance(exc, SilenceRefused) else str(exc)
        return see_other(request, BASE + "/silences", Flash("error", f"Not extended: {why}"))
    return see_other(request, BASE + "/silences", Flash("ok", f"Silence {changed.id} now ends {iso(changed.ends_at)}."))


async def expire(request: web.Request) -> web.Response:
    cs = console_of(request)
    silence_id = _text(form_of(request), "id", 64)
    try:
        done = await expire_silence(cs.api.redis, silence_id, now=cs.clock())
    except SilenceRefused as exc:
        return see_other(request, BASE + "/silences", Flash("error", f"Not expired: {exc.reason}"))
    log.info("console: silence %s expired", done.id)
    return see_other(request, BASE + "/silences", Flash("ok", f"Silence {done.id} expired."))
