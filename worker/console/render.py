"""The console's HTML: jinja2 templates (autoescaped) and the filters they use."""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import orjson
from aiohttp import web

from core.events import utc_iso

__all__ = ["TEMPLATES", "ago", "environment", "html", "page_url", "pretty_json", "when"]

TEMPLATES = Path(__file__).parent / "templates"


def when(value: float | str | None) -> str:
    """A time as ISO 8601 UTC to the second (epoch seconds or an ISO string as stored)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        return utc_iso(value)
    return str(value)


def _seconds(delta: float) -> str:
    delta = abs(delta)
    if delta < 90:
        return f"{delta:.0f} s"
    if delta < 5400:
        return f"{delta / 60:.0f} min"
    if delta < 172_800:
        return f"{delta / 3600:.1f} h"
    return f"{delta / 86400:.0f} d"


def ago(value: float | str | None, now: float | None = None) -> str:
    """How long ago (or, for a future time, in how long) `value` is: "12 s ago", "in 3 min"."""
    if value is None or value == "":
        return ""
    now = time.time() if now is None else now
    if isinstance(value, str):
        try:
            value = float(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")))
        except ValueError:
            return ""
    delta = now - value
    return f"{_seconds(delta)} ago" if delta >= 0 else f"in {_seconds(delta)}"


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def page_url(path: str, query: Mapping[str, Any], **changes: Any) -> str:
    """`path` with `query` changed by `changes` (a None or empty value drops the parameter)."""
    merged = {**query, **changes}
    params = {k: v for k, v in merged.items() if v not in (None, "")}
    return f"{path}?{urlencode(params)}" if params else path


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, ago=ago, pretty_json=pretty_json)
    env.globals.update(page_url=page_url)
    return env


def html(env: jinja2.Environment, template: str, context: Mapping[str, Any], *, status: int = 200,
         headers: Mapping[str, str] | None = None) -> web.Response:
    body = env.get_template(template).render(**context)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=headers)
