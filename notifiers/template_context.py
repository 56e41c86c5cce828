"""What a template sees: the variables of one event (a maintenance window's summary lists
its `resources` too) or of a digest, and the helpers (escaping, link checks, the notable
changes) that the templates and the Slack blocks share. Pure: no Jinja, no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from core.window_summary import WINDOW_SUMMARY_TYPE
from model.events import Event

__all__ = [
    "COLOR",
    "MARK",
    "digest_context",
    "event_context",
    "link_url",
    "mrkdwn_escape",
    "notable_changes",
    "short",
    "window_resources",
]

MARK = {"info": ":large_blue_circle:", "warning": ":large_orange_circle:", "critical": ":red_circle:"}
"""Slack emoji per severity: the severity at a glance."""

COLOR = {"info": "#2f6fdf", "warning": "#e8912d", "critical": "#d1242f"}

NOISE = frozenset({"updated_at", "modified_at", "last_updated", "last_modified", "updated", "modified", "etag"})
"""Changed fields that say only that something changed: not shown among the changes."""

MAX_CHANGES = 10
VALUE_CHARS = 120


MAX_LINK_URL = 2000
"""A longer resource URL is not linked (it would fill a Slack section on its own)."""


def link_url(value: Any) -> str | None:
    """`value` when it is an http(s) URL short enough to link, with the characters that
    would end a Slack link or an HTML attribute early (`<>|"` and spaces) percent-encoded."""
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) or len(value) > MAX_LINK_URL:
        return None
    for char, code in (("<", "%3C"), (">", "%3E"), ("|", "%7C"), ('"', "%22"), (" ", "%20")):
        value = value.replace(char, code)
    return value


def mrkdwn_escape(value: Any) -> str:
    """Slack's mrkdwn treats `&`, `<` and `>` as control characters; nothing else."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def short(value: Any) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def notable_changes(event: Event, limit: int = MAX_CHANGES) -> list[dict[str, str]]:
    """The changed fields worth a line: not the state change already shown as from → to,
    not bookkeeping timestamps; values shortened. At most `limit`."""
    out = []
    for change in event.data.get("changes") or ():
        if not isinstance(change, dict) or "path" not in change:
            continue
        path = str(change["path"])
        old, new = change.get("old"), change.get("new")
        if old == event.data.get("from") and new == event.data.get("to") and "to" in event.data:
            continue
        if path.rstrip("/").rsplit("/", 1)[-1].lower() in NOISE:
            continue
        out.append({"path": path, "old": short(old), "new": short(new)})
        if len(out) >= limit:
            break
    return out


def event_context(event: Event) -> dict[str, Any]:
    """The variables a template sees for one event. `event` is the event as delivered
    everywhere else (the JSON of a webhook), the rest are conveniences."""
    doc = event.as_dict()
    resource = doc["resource"]
    url = resource.get("url")
    severity = event.severity.value
    resources, omitted = window_resources(event)
    return {
        "event": doc,
        "severity": severity,
        "mark": MARK[severity],
        "color": COLOR[severity],
        "title": str(resource.get("title") or resource.get("id")),
        "url": link_url(url),
        "from_state": event.data.get("from"),
        "to_state": event.data.get("to"),
        "changes": notable_changes(event),
        "resources": resources,
        "resources_omitted": omitted,
    }


def window_resources(event: Event) -> tuple[list[dict[str, Any]], int]:
    """A maintenance window's summary (core/window_summary.py): its resources, each with the
    one-event conveniences (`mark`, `color`, `url` checked for linking) and its events, and
    how many resources it left out. Nothing for any other event."""
    if event.type != WINDOW_SUMMARY_TYPE:
        return [], 0
    out = []
    for r in event.data.get("resources") or ():
        if not isinstance(r, dict):
            continue
        severity = str(r.get("severity")) if r.get("severity") in MARK else "info"
        events = [e for e in r.get("events") or () if isinstance(e, dict)]
        out.append({"title": str(r.get("title") or r.get("id") or r.get("rkey")), "url": link_url(r.get("url")),
                    "rkey": r.get("rkey"), "provider": r.get("provider"), "kind": r.get("kind"), "id": r.get("id"),
                    "state": r.get("state"), "severity": severity, "mark": MARK[severity], "color": COLOR[severity],
                    "summary": r.get("summary"), "count": int(r.get("count") or len(events)),
                    "events": [{"summary": e.get("summary"), "detected_at": e.get("detected_at"),
                                "type": e.get("type"), "severity": e.get("severity")} for e in events]})
    omitted = event.data.get("omitted")
    return out, omitted if isinstance(omitted, int) else 0


def digest_context(event: Event) -> dict[str, Any]:
    """The variables of a digest: `events` (each with the one-event conveniences), `count`,
    `omitted` (events beyond what the digest carries), `window` (start, end, label)."""
    data = event.data
    events = [event_context(Event.from_dict({**e, "snapshot": None})) for e in data.get("events") or ()]
    window = dict(data.get("window") or {})
    window.setdefault("start", "?")
    window.setdefault("end", "?")
    window.setdefault("label", f"{window['start']} – {window['end']}")
    severity = event.severity.value
    return {
        "event": event.as_dict(),
        "events": events,
        "count": int(data.get("count", len(events))),
        "omitted": int(data.get("omitted", 0)),
        "window": window,
        "route": data.get("route_name") or data.get("route"),
        "severity": severity,
        "mark": MARK[severity],
        "color": COLOR[severity],
    }
