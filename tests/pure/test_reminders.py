"""core/reminders.py with plain values: what may arm a reminder, when the next is due, the
reminder event and its id, and the acknowledgement's limits."""

from __future__ import annotations

import pytest

from core.reminders import (
    MAX_ACK_AUTHOR,
    MAX_ACK_COMMENT,
    ack_problem,
    can_arm,
    is_reminder,
    member_of,
    next_due,
    reminder_event,
)
from core.route import select
from model.events import Event, Severity
from model.routes import Route


def failed(severity: str = "critical", *, provider: str = "artistree", data: dict | None = None) -> Event:
    return Event(
        id="evt_a1", type=f"{provider}.order.state_changed", provider=provider,
        resource={"kind": "order", "id": "o1", "key": f"{provider}:order:o1", "url": None, "title": "Poster"},
        seq=4, detected_at="2026-11-23T10:15:02Z", severity=Severity(severity), summary="Poster: In Progress → Failed",
        data={"from": "In Progress", "to": "Failed"} if data is None else data,
        snapshot={"order_state": "Failed"}, tags=("print",), project="p1",
    )


def test_only_a_critical_event_that_is_no_reminder_and_not_statehooks_own_arms() -> None:
    assert can_arm(failed())
    assert not can_arm(failed("warning"))
    assert not can_arm(failed(data={"to": "Failed", "reminder": 1}))
    assert not can_arm(failed(provider="statehook"))
    assert can_arm(failed(data={"error": "boom"}))  # no target state: armed in the state it is in


def test_the_next_reminder_keeps_its_rhythm_and_a_late_step_sends_one() -> None:
    assert next_due(1000.0, 60.0, 1000.5) == 1060.0
    assert next_due(1000.0, 60.0, 1003.0) == 1060.0   # a step a little late: same grid
    assert next_due(1000.0, 60.0, 1060.0) == 1120.0   # never `now` itself
    assert next_due(1000.0, 60.0, 4601.0) == 4660.0   # down for an hour: the next slot, not 60 reminders
    assert next_due(1000.0, 60.0, 900.0) == 1060.0    # a step early (a clock behind): one period on
    with pytest.raises(ValueError):
        next_due(1000.0, 0.0, 1000.0)


def test_a_reminder_is_its_arming_event_again_with_n_and_a_new_id_per_n() -> None:
    arming = failed()
    r1 = reminder_event(arming, n=1, route="n-abc", destination="pager", now=1_795_428_000.0)
    r2 = reminder_event(arming, n=2, route="n-abc", destination="pager", now=1_795_431_600.0)
    assert (r1.type, r1.resource, r1.seq, r1.severity, r1.tags, r1.project, r1.snapshot) == (
        arming.type, arming.resource, arming.seq, arming.severity, arming.tags, arming.project, arming.snapshot)
    assert r1.data == {**arming.data, "reminder": 1, "reminder_of": "evt_a1", "reminder_since": arming.detected_at,
                       "reminder_route": "n-abc", "reminder_destination": "pager"}
    assert r2.data["reminder"] == 2 and r1.summary == "Reminder 1: Poster: In Progress → Failed"
    assert r1.detected_at == "2026-11-23T10:00:00Z"
    ids = {r1.id, r2.id, arming.id, reminder_event(arming, n=1, route="n-abc", destination="mail", now=0).id,
           reminder_event(arming, n=1, route="n-xyz", destination="pager", now=0).id}
    assert len(ids) == 5 and all(i.startswith("evt_") for i in ids)
    assert reminder_event(arming, n=1, route="n-abc", destination="pager", now=5).id == r1.id  # deterministic
    assert is_reminder(r1) and not is_reminder(arming)
    assert Event.from_json(r1.to_json()) == r1


def test_a_reminder_matches_the_routes_its_arming_event_matched() -> None:
    routes = [Route.model_validate({"match": {"type": "artistree.order.state_changed", "state": "Failed"},
                                    "to": ["pager"], "repeat_every": "1h"}),
              Route.model_validate({"match": {"tags": "print"}, "to": ["mail"]})]
    arming = failed()
    reminder = reminder_event(arming, n=1, route="k", destination="pager", now=0)
    assert [s.destination for s in select(reminder, routes)] == [s.destination for s in select(arming, routes)]


def test_the_armed_reminder_is_one_per_resource_route_and_destination() -> None:
    names = {member_of("rev:order:1", "n-a", "pager"), member_of("rev:order:1", "n-a", "mail"),
             member_of("rev:order:1", "n-b", "pager"), member_of("rev:order:2", "n-a", "pager"),
             member_of("rev:order:1|n-a", "", "pager")}
    assert len(names) == 5
    assert member_of("rev:order:1", "n-a", "pager") == member_of("rev:order:1", "n-a", "pager")


def test_an_acknowledgement_names_an_author_and_bounds_its_texts() -> None:
    assert ack_problem("ops", "") is None
    assert ack_problem("ops", "x" * MAX_ACK_COMMENT) is None
    assert ack_problem(" ", "") == "the author is empty"
    assert ack_problem("a" * (MAX_ACK_AUTHOR + 1), "") == f"the author is longer than {MAX_ACK_AUTHOR} characters"
    assert ack_problem("ops", "x" * (MAX_ACK_COMMENT + 1)) == (
        f"the comment is longer than {MAX_ACK_COMMENT} characters")
