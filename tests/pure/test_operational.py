"""Operational events as values, their no-loop routing, and timeline notes. Pure."""

from __future__ import annotations

import orjson
import pytest

from core.operational import operational_event
from core.route import select
from model.events import Severity
from model.operational import DELIVERY_DEAD_LETTERED, Subject, about_destination, is_operational
from model.routes import Route
from store.history import note_entry, read_history_entry


def test_an_event_about_a_destination_is_never_routed_to_it() -> None:
    event = operational_event(DELIVERY_DEAD_LETTERED, Subject("delivery", "evt_1"), severity=Severity.WARNING,
                              summary="dead", data={"destination": "slack"}, seq=1, now=0.0)
    routes = [Route(match={"provider": "statehook"}, to=["slack", "hook"])]
    assert [s.destination for s in select(event, routes)] == ["hook"]
    assert event.resource["key"] == "statehook:delivery:evt_1" and event.provider == "statehook"


def test_operational_types_and_their_destination() -> None:
    assert is_operational("statehook.provider.unhealthy")
    assert not is_operational("statehook.digest") and not is_operational("rev.order.state_changed")
    assert about_destination("rev.order.failed", {"destination": "x"}) is None


def test_a_note_reads_back_with_its_data() -> None:
    raw = note_entry("silenced", 1_700_000_000, "muted for slack", seq=3, event_id="evt_a", data={"silence": "s1"})
    entry = read_history_entry(raw, "rev:order:1")
    assert entry["type"] == "silenced" and entry["id"] == "evt_a" and entry["note"] == {"silence": "s1"}
    assert entry["at"] == "2023-11-14T22:13:20Z"
    assert orjson.loads(raw)[3] == "info"
    with pytest.raises(ValueError):
        note_entry("whatever", 0, "", seq=0, event_id="", data={})
