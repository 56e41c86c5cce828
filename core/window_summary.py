"""The summary a maintenance window leaves when its muting ends (`after_window = "summary"`):
one event per (route, destination) listing what was muted, grouped by resource, each
resource's latest event (its state at the window's end) first. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from model.events import Event, Severity

__all__ = ["EVENTS_PER_RESOURCE", "RESOURCES_KEPT", "WINDOW_SUMMARY_TYPE", "summary_event", "summary_id"]

WINDOW_SUMMARY_TYPE = "statehook.window.summary"
RESOURCES_KEPT = 100
"""Resources listed in one summary; `omitted` says how many more there were."""
EVENTS_PER_RESOURCE = 10
"""Events listed per resource, newest first; its `count` says how many it had."""


def summary_id(route: str, destination: str, end: float) -> str:
    h = hashlib.blake2b(f"{route}\x00{destination}\x00{end:.3f}".encode(), digest_size=12)
    return f"win_{h.hexdigest()}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _resource(events: list[dict[str, Any]]) -> dict[str, Any]:
    """One resource's entry; `events` newest first."""
    latest = events[0]
    res = latest.get("resource") or {}
    state = next((e["data"]["to"] for e in events if isinstance(e.get("data"), dict) and "to" in e["data"]), None)
    return {"rkey": res.get("key"), "provider": latest.get("provider"), "kind": res.get("kind"), "id": res.get("id"),
            "title": res.get("title") or res.get("id"), "url": res.get("url"), "state": state,
            "severity": latest.get("severity"), "summary": latest.get("summary"), "count": len(events),
            "events": [{**e, "snapshot": None} for e in events[:EVENTS_PER_RESOURCE]]}


def _severity(value: Any) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        return Severity.INFO


def summary_event(route: str, route_name: str | None, destination: str, windows: Sequence[str], end: float,
                  muted: Sequence[dict[str, Any]]) -> Event | None:
    """The summary of `muted` (events in the order they were held) for `destination`; None
    when nothing was muted. Resources whose latest event is the most severe come first."""
    if not muted:
        return None
    by_rkey: dict[str, list[dict[str, Any]]] = {}
    for e in muted:
        by_rkey.setdefault(str((e.get("resource") or {}).get("key")), []).append(e)
    entries = [_resource(sorted(evs, key=lambda e: (str(e.get("detected_at", "")), int(e.get("seq", 0))),
                                reverse=True)) for evs in by_rkey.values()]
    entries.sort(key=lambda r: str(r["events"][0].get("detected_at", "")), reverse=True)
    entries.sort(key=lambda r: -_severity(r["severity"]).rank)  # stable: the most severe first, newest first
    kept = entries[:RESOURCES_KEPT]
    severity = max((_severity(r["severity"]) for r in kept), key=lambda s: s.rank, default=Severity.INFO)
    names = list(dict.fromkeys(windows))
    label = ", ".join(names) or "a maintenance window"
    n, r = len(muted), len(entries)
    first = min(str(e.get("detected_at", "")) for e in muted)
    return Event(
        id=summary_id(route, destination, end), type=WINDOW_SUMMARY_TYPE, provider="statehook",
        resource={"kind": "window", "id": f"{destination}:{route}", "key": f"statehook:window:{destination}:{route}",
                  "url": None, "title": f"After {label}"},
        seq=int(end), detected_at=_iso(end), severity=severity,
        summary=f"{label} ended: {n} muted event{'' if n == 1 else 's'} of {r} resource{'' if r == 1 else 's'}",
        data={"route": route, "route_name": route_name, "destination": destination, "windows": names,
              "window": {"start": first, "end": _iso(end), "label": f"{first} – {_iso(end)}"},
              "count": n, "resources": kept, "omitted": r - len(kept)},
        snapshot=None,
    )
