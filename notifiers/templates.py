"""Message templates: Jinja2 in a sandbox, with defaults good enough to page someone with,
and overrides per destination (`templates = {…}` in its block) or per route (`template`).

What a template renders is named by its key (model.values.TemplateKey): `subject` (email
subject, Slack fallback text), `text` and `html` (the email parts), `slack` (the Slack
message section, mrkdwn), `body` (text and Slack at once), and the `digest_` variants for
a digest of several events. The most specific override wins: route, then destination,
then the default. An override of the text alone also stands in for the HTML part (the
text in a `<pre>`), so that an email never says two different things.

Templates run in a `SandboxedEnvironment` with `StrictUndefined`: a misspelt variable is
an error, found by `statehook check` (which renders every override against sample events)
rather than at 3 am. Should a template still fail on a real event, the default renders
instead and the failure is logged: the page goes out.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from markupsafe import escape

from core.route import RouteTable
from model.events import DIGEST_TYPE, Event, Severity
from model.routes import Route

__all__ = [
    "DEFAULTS",
    "TemplateBook",
    "bind_routes",
    "check_template",
    "digest_context",
    "event_context",
    "mrkdwn_escape",
    "notable_changes",
    "sample_digest",
    "sample_event",
    "template_problems",
]

log = logging.getLogger("statehook.templates")


MARK = {"info": ":large_blue_circle:", "warning": ":large_orange_circle:", "critical": ":red_circle:"}
"""Slack emoji per severity: the severity at a glance."""

COLOR = {"info": "#2f6fdf", "warning": "#e8912d", "critical": "#d1242f"}

NOISE = frozenset({"updated_at", "modified_at", "last_updated", "last_modified", "updated", "modified", "etag"})
"""Changed fields that say only that something changed: not shown among the changes."""

MAX_CHANGES = 10
VALUE_CHARS = 120

_SUBJECT = "[{{ severity|upper }}] {{ event.summary }}"

_TEXT = """\
{{ event.summary }}

Severity:  {{ severity }}
Provider:  {{ event.provider }}
Resource:  {{ title }} ({{ event.resource.kind }} {{ event.resource.id }})
{% if to_state is not none %}
State:     {{ from_state if from_state is not none else "—" }} → {{ to_state }}
{% endif %}
{% if url %}
Link:      {{ url }}
{% endif %}
Event:     {{ event.type }} #{{ event.seq }} at {{ event.detected_at }}
{% if changes %}

Changes:
{% for c in changes %}
  {{ c.path }}: {{ c.old }} → {{ c.new }}
{% endfor %}
{% endif %}

--
statehook · event {{ event.id }}
"""

_HTML = """\
<!doctype html>
<html><body style="font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; color: #1f2328;">
<div style="border-left: 6px solid {{ color }}; padding: 4px 12px;">
<p style="font-size: 16px; margin: 4px 0;"><strong>{{ event.summary }}</strong></p>
<table style="border-collapse: collapse; font-size: 14px;">
<tr><td style="padding: 2px 12px 2px 0; color: #59636e;">Severity</td><td><strong>{{ severity }}</strong></td></tr>
<tr><td style="padding: 2px 12px 2px 0; color: #59636e;">Provider</td><td>{{ event.provider }}</td></tr>
<tr><td style="padding: 2px 12px 2px 0; color: #59636e;">Resource</td>
<td>{% if url %}<a href="{{ url }}">{{ title }}</a>{% else %}{{ title }}{% endif %}
 ({{ event.resource.kind }} <code>{{ event.resource.id }}</code>)</td></tr>
{% if to_state is not none %}
<tr><td style="padding: 2px 12px 2px 0; color: #59636e;">State</td>
<td>{{ from_state if from_state is not none else "—" }} → <strong>{{ to_state }}</strong></td></tr>
{% endif %}
<tr><td style="padding: 2px 12px 2px 0; color: #59636e;">Event</td>
<td>{{ event.type }} #{{ event.seq }} at {{ event.detected_at }}</td></tr>
</table>
{% if changes %}
<p style="margin: 12px 0 4px;"><strong>Changes</strong></p>
<table style="border-collapse: collapse; font-size: 13px;">
{% for c in changes %}
<tr><td style="padding: 2px 12px 2px 0;"><code>{{ c.path }}</code></td><td>{{ c.old }} → {{ c.new }}</td></tr>
{% endfor %}
</table>
{% endif %}
</div>
<p style="font-size: 12px; color: #59636e;">statehook · event {{ event.id }}</p>
</body></html>
"""

_SLACK = """\
{{ mark }} *{% if url %}<{{ url }}|{{ title|mrkdwn }}>{% else %}{{ title|mrkdwn }}{% endif %}*\
  ·  {{ event.provider|mrkdwn }} {{ event.resource.kind|mrkdwn }} `{{ event.resource.id|mrkdwn }}`
{% if to_state is not none %}
*{{ (from_state if from_state is not none else "—")|mrkdwn }}* → *{{ to_state|mrkdwn }}*
{% else %}
{{ event.summary|mrkdwn }}
{% endif %}
"""

_DIGEST_SUBJECT = "[{{ severity|upper }}] {{ count }} event{{ '' if count == 1 else 's' }} ({{ window.label }})"

_DIGEST_TEXT = """\
{{ count }} event{{ '' if count == 1 else 's' }} between {{ window.start }} and {{ window.end }}

{% for e in events %}
[{{ e.severity|upper }}] {{ e.event.summary }}
    {{ e.event.provider }} {{ e.event.resource.kind }} {{ e.event.resource.id }} · {{ e.event.type }} \
at {{ e.event.detected_at }}
{% if e.url %}
    {{ e.url }}
{% endif %}

{% endfor %}
{% if omitted %}
… and {{ omitted }} more.

{% endif %}
--
statehook · digest {{ event.id }}
"""

_DIGEST_HTML = """\
<!doctype html>
<html><body style="font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; color: #1f2328;">
<p style="font-size: 16px;"><strong>{{ count }} event{{ '' if count == 1 else 's' }}</strong>
 between {{ window.start }} and {{ window.end }}</p>
<table style="border-collapse: collapse; font-size: 14px;">
{% for e in events %}
<tr style="border-top: 1px solid #d1d9e0;">
<td style="padding: 6px 8px; border-left: 6px solid {{ e.color }};"><strong>{{ e.severity }}</strong></td>
<td style="padding: 6px 8px;">{% if e.url %}<a href="{{ e.url }}">{{ e.event.summary }}</a>{% else %}\
{{ e.event.summary }}{% endif %}<br>
<span style="color: #59636e; font-size: 12px;">{{ e.event.provider }} {{ e.event.resource.kind }}
 <code>{{ e.event.resource.id }}</code> · {{ e.event.type }} at {{ e.event.detected_at }}</span></td></tr>
{% endfor %}
</table>
{% if omitted %}<p>… and {{ omitted }} more.</p>{% endif %}
<p style="font-size: 12px; color: #59636e;">statehook · digest {{ event.id }}</p>
</body></html>
"""

_DIGEST_SLACK = """\
{{ mark }} *{{ count }} event{{ '' if count == 1 else 's' }}* ({{ window.label }})
{% for e in events[:20] %}
{{ e.mark }} {% if e.url %}<{{ e.url }}|{{ e.event.summary|mrkdwn }}>{% else %}{{ e.event.summary|mrkdwn }}{% endif %}

{% endfor %}
{% if count > 20 %}
… and {{ count - 20 }} more.
{% endif %}
"""

DEFAULTS: dict[str, str] = {
    "subject": _SUBJECT,
    "text": _TEXT,
    "html": _HTML,
    "slack": _SLACK,
    "digest_subject": _DIGEST_SUBJECT,
    "digest_text": _DIGEST_TEXT,
    "digest_html": _DIGEST_HTML,
    "digest_slack": _DIGEST_SLACK,
}

_PRE = '<!doctype html>\n<html><body><pre style="font-family: inherit; white-space: pre-wrap;">{}</pre></body></html>\n'


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


def _short(value: Any) -> str:
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
        out.append({"path": path, "old": _short(old), "new": _short(new)})
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
    }


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


def _environment(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=autoescape, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["mrkdwn"] = mrkdwn_escape
    env.filters["short"] = _short
    return env


_TEXT_ENV = _environment(autoescape=False)
_HTML_ENV = _environment(autoescape=True)


def _is_html(key: str) -> bool:
    return key.endswith("html")


@functools.lru_cache(maxsize=512)
def _compile(key: str, source: str) -> Any:
    return (_HTML_ENV if _is_html(key) else _TEXT_ENV).from_string(source)


def _render_source(key: str, source: str, context: Mapping[str, Any]) -> str:
    text = _compile(key, source).render(**context)
    if key.endswith("subject"):
        text = " ".join(text.split())  # one line, whatever the template did
    return text


def _pick(key: str, layers: Sequence[Mapping[Any, str]]) -> tuple[str, str] | None:
    """The override for `key` from the most specific layer that has one, as (key it was
    written for, source); None for the default. HTML falls back to the layer's text."""
    for layer in layers:
        if key in layer:
            return key, layer[key]
        if key in ("text", "slack") and "body" in layer:
            return "body", layer["body"]
        if key == "html" and ("text" in layer or "body" in layer):
            return ("text", layer["text"]) if "text" in layer else ("body", layer["body"])
        if key == "digest_html" and "digest_text" in layer:
            return "digest_text", layer["digest_text"]
    return None


def _context_for(key: str, event: Event) -> dict[str, Any]:
    return digest_context(event) if key.startswith("digest_") else event_context(event)


@dataclass
class TemplateBook:
    """A destination's templates: its own overrides, and the routes, whose overrides apply
    to the events they selected for this destination (the first route that did)."""

    destination: str
    overrides: Mapping[Any, str] = field(default_factory=dict)
    routes: Sequence[Route] = ()
    _table: RouteTable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.use_routes(self.routes)

    def use_routes(self, routes: Sequence[Route]) -> None:
        self._table = RouteTable.of(routes)
        self.routes = self._table.routes

    def route_overrides(self, event: Event) -> Mapping[Any, str]:
        if event.type == DIGEST_TYPE:
            key = event.data.get("route")
            route = self._table.get(key) if isinstance(key, str) else None
            return (route.template or {}) if route is not None else {}
        for sel in self._table.select(event):
            if sel.destination == self.destination:
                return self._table[sel.route].template or {}
        return {}

    def render(self, key: str, event: Event) -> str:
        """`key` for this event (`subject`, `text`, …; the digest variant is chosen here
        for a digest event). Falls back to the default if the override fails."""
        if event.type == DIGEST_TYPE and not key.startswith("digest_"):
            key = "digest_" + key
        context = _context_for(key, event)
        picked = _pick(key, [self.route_overrides(event), self.overrides])
        if picked is not None:
            written_for, source = picked
            try:
                text = _render_source(written_for, source, context)
            except Exception as exc:
                log.error("template %s of destination %s failed on %s: %s; using the default",
                          written_for, self.destination, event.id, _describe(exc))
            else:
                if _is_html(key) and not _is_html(written_for):
                    return _PRE.format(escape(text))
                return text
        return _render_source(key, DEFAULTS[key], context)


def bind_routes(notifiers: Iterable[Any], routes: Sequence[Route]) -> None:
    """Give every templated notifier the routes, so that per-route overrides apply. Called
    once by the runtime after it builds the notifiers."""
    for notifier in notifiers:
        book = getattr(notifier, "templates", None)
        if isinstance(book, TemplateBook):
            book.use_routes(routes)


def sample_event(severity: Severity = Severity.CRITICAL, *, event_id: str = "evt_sample") -> Event:
    """A state change with every field filled: what `statehook check` renders overrides
    against, and what `statehook notify test` sends."""
    return Event(
        id=event_id,
        type="statehook.test.state_changed",
        provider="statehook",
        resource={"kind": "order", "id": "ord-sample-1", "key": "statehook:order:ord-sample-1",
                  "url": "https://example.com/orders/ord-sample-1", "title": "Sample order"},
        seq=7,
        detected_at="2026-11-23T10:15:02Z",
        severity=severity,
        summary="Order “Sample order”: In Progress → Failed",
        data={"from": "In Progress", "to": "Failed", "terminal": True,
              "changes": [{"path": "/order_state", "old": "In Progress", "new": "Failed"},
                          {"path": "/failure_reason", "old": None, "new": "layer 2 could not be analysed"}]},
        snapshot={"order_state": "Failed", "order_title": "Sample order"},
        tags=("sample",),
        project="Sample project",
    )


def sample_digest() -> Event:
    from store.digests import digest_event

    events = [sample_event(Severity.CRITICAL, event_id="evt_sample_1"),
              sample_event(Severity.INFO, event_id="evt_sample_2")]
    return digest_event("n-sample", "sample", "sample", 1795428000.0, 300.0, [e.as_dict() for e in events])


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"line {exc.lineno}: {exc.message}"
    if isinstance(exc, UndefinedError):
        return f"unknown variable: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"not allowed in the sandbox: {exc}"
    if isinstance(exc, TemplateError):
        return f"{type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def check_template(key: str, source: str) -> str | None:
    """A problem with this template (syntax, unknown variable, sandbox violation) when
    rendered for a sample event, or None."""
    sample = sample_digest() if key.startswith("digest_") else sample_event()
    try:
        _render_source(key, source, _context_for(key, sample))
    except Exception as exc:
        return _describe(exc)
    return None


def template_problems(
    destinations: Mapping[str, Any], routes: Sequence[Route]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Every template override that does not render, as (config location, problem): for
    `config.load` to report with file and line, like any other config problem."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for name, settings in destinations.items():
        for key, source in (getattr(settings, "templates", None) or {}).items():
            problem = check_template(key, source)
            if problem:
                shorthand = key == "subject" and getattr(settings, "subject", None) == source  # email's `subject`
                out.append((("destinations", name, "subject") if shorthand else
                            ("destinations", name, "templates", key), problem))
    for i, route in enumerate(routes):
        for key, source in (route.template or {}).items():
            problem = check_template(key, source)
            if problem:
                out.append((("routes", i, "template", key), problem))
    return out

