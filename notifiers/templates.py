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

The default sources are in notifiers/template_defaults.py, the variables a template sees
in notifiers/template_context.py.
"""

from __future__ import annotations

import functools
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
from notifiers.template_context import digest_context, event_context, mrkdwn_escape, notable_changes, short
from notifiers.template_defaults import DEFAULTS, PRE

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


def _environment(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=autoescape, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["mrkdwn"] = mrkdwn_escape
    env.filters["short"] = short
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
                    return PRE.format(escape(text))
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

