"""Templates with plain values: the variables a template sees (notifiers/template_context.py),
which override renders (route, destination, default; text standing in for HTML), and what
`statehook check` says of a broken one."""

from __future__ import annotations

import dataclasses

import pytest

from model.events import Severity
from model.routes import Route
from notifiers.template_context import digest_context, event_context, link_url, mrkdwn_escape, notable_changes
from notifiers.template_defaults import DEFAULTS
from notifiers.templates import TemplateBook, check_template, sample_digest, sample_event


def test_notable_changes_skip_the_state_change_and_bookkeeping_and_shorten_values() -> None:
    ev = sample_event()
    ev = dataclasses.replace(ev, data={**ev.data, "changes": [
        {"path": "/order_state", "old": "In Progress", "new": "Failed"},  # shown as from → to already
        {"path": "/meta/updated_at", "old": "1", "new": "2"},
        {"path": "/price", "old": None, "new": {"b": 1, "a": "é"}},
        {"path": "/note", "old": "x" * 500, "new": "y"},
        "not a change",
    ]})
    changes = notable_changes(ev)
    assert [c["path"] for c in changes] == ["/price", "/note"]
    assert changes[0] == {"path": "/price", "old": "—", "new": '{"a": "é", "b": 1}'}
    assert len(changes[1]["old"]) == 120 and changes[1]["old"].endswith("…")
    assert notable_changes(ev, limit=1) == changes[:1]


def test_a_link_is_an_http_url_whose_link_breaking_characters_are_encoded() -> None:
    assert link_url('https://x.example/a|b <c>"d') == "https://x.example/a%7Cb%20%3Cc%3E%22d"
    assert link_url("javascript:alert(1)") is None
    assert link_url("https://x.example/" + "a" * 2000) is None
    assert link_url(None) is None
    assert mrkdwn_escape("<!here> & co") == "&lt;!here&gt; &amp; co"


def test_an_events_variables() -> None:
    ctx = event_context(sample_event(Severity.WARNING))
    assert ctx["severity"] == "warning" and ctx["mark"] == ":large_orange_circle:"
    assert (ctx["title"], ctx["from_state"], ctx["to_state"]) == ("Sample order", "In Progress", "Failed")
    assert ctx["url"] == "https://example.com/orders/ord-sample-1"
    assert ctx["event"]["id"] == "evt_sample"
    assert [c["path"] for c in ctx["changes"]] == ["/failure_reason"]


def test_a_digests_variables() -> None:
    ctx = digest_context(sample_digest())
    assert ctx["count"] == 2 and ctx["omitted"] == 0
    assert [e["event"]["id"] for e in ctx["events"]] == ["evt_sample_1", "evt_sample_2"]
    assert {"start", "end", "label"} <= set(ctx["window"])


def test_the_most_specific_override_wins_and_text_stands_in_for_html() -> None:
    route = Route.model_validate({"to": ["ops"], "template": {"subject": "R {{ title }}"}})
    book = TemplateBook("ops", {"subject": "D {{ title }}", "text": "T <{{ to_state }}>"}, [route])
    ev = sample_event()
    assert book.render("subject", ev) == "R Sample order"
    assert TemplateBook("ops", {"subject": "D {{ title }}"}).render("subject", ev) == "D Sample order"
    assert book.render("text", ev) == "T <Failed>"
    html = book.render("html", ev)
    assert "<pre" in html and "T &lt;Failed&gt;" in html  # the text, escaped, in a <pre>
    assert TemplateBook("ops", {"body": "B"}).render("slack", ev) == "B"


def test_a_subject_is_one_line_and_a_failing_override_falls_back_to_the_default() -> None:
    ev = sample_event()
    assert TemplateBook("ops", {"subject": "a\n  b\n"}).render("subject", ev) == "a b"
    broken = TemplateBook("ops", {"subject": "{{ nope.deeper }}"})
    assert broken.render("subject", ev) == TemplateBook("ops").render("subject", ev)
    assert TemplateBook("ops").render("subject", ev) == "[CRITICAL] Order “Sample order”: In Progress → Failed"


def test_a_digest_event_renders_the_digest_variant() -> None:
    book = TemplateBook("ops", {"digest_subject": "{{ count }} in {{ window.label }}"})
    digest = sample_digest()
    assert book.render("subject", digest) == f"2 in {digest.data['window']['label']}"
    assert "2 events" in TemplateBook("ops").render("subject", digest)


@pytest.mark.parametrize(("key", "source", "problem"), [
    ("subject", "{{ title", "line 1: "),
    ("text", "{{ titel }}", "unknown variable: 'titel' is undefined"),
    ("text", "{{ ''.__class__ }}", "not allowed in the sandbox"),
    ("digest_text", "{{ events[0].title }} {{ count }}", None),
    ("digest_text", "{{ to_state }}", "unknown variable"),
])
def test_check_template_names_the_problem(key: str, source: str, problem: str | None) -> None:
    found = check_template(key, source)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found


def test_every_default_renders_for_its_sample() -> None:
    for key, source in DEFAULTS.items():
        assert check_template(key, source) is None, key
