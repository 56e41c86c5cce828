"""Silences without a server (core/silences.py, model/silences.py): what a silence's matchers
mute, its states by the clock, the preview and its match-everything refusal, and the
one-line refusals of bad matchers and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.silences import (
    LATEST,
    ActiveSilences,
    matches,
    mutes_everything,
    parse_matchers,
    parse_when,
    preview,
    time_problem,
)
from model.events import Severity
from model.silences import RoutingFacts, Silence, SilenceMatch, SilenceState

T0 = 1_795_428_000.0


def facts(type_: str = "artistree.order.state_changed", *, rid: str = "ord-1", state: str | None = "Failed",
          severity: str = "critical", tags: tuple[str, ...] = (), project: str | None = None,
          destinations: tuple[str, ...] = ("slack", "mail")) -> RoutingFacts:
    provider, kind = type_.split(".")[:2]
    return RoutingFacts(f"evt_{rid}_{type_}", type_, provider, f"{provider}:{kind}:{rid}", rid, state,
                        Severity(severity), tags, project, "2026-11-23T10:15:02Z", destinations)


def silence(match: dict[str, object], *, starts: float = T0, ends: float = T0 + 3600, sid: str = "sil_1") -> Silence:
    return Silence(id=sid, match=SilenceMatch.model_validate(match), starts_at=starts, ends_at=ends,
                   author="ops", comment="", created_at=T0 - 10)


@pytest.mark.parametrize(("match", "destination", "expected"), [
    ({}, "slack", True),
    ({"provider": "artistree"}, "slack", True),
    ({"provider": ["rev", "sartiq"]}, "slack", False),
    ({"type": "*.state_changed"}, "mail", True),
    ({"type": ["rev.*", "artistree.order.*"]}, "mail", True),
    ({"type": "*.gone"}, "mail", False),
    ({"rkey": "artistree:order:ord-1"}, "slack", True),
    ({"rkey": "artistree:order:ord-2"}, "slack", False),
    ({"id": "ord-1"}, "slack", True),
    ({"state": "FAILED"}, "slack", True),
    ({"state": "Reviewed"}, "slack", False),
    ({"severity": ["warning", "critical"]}, "slack", True),
    ({"severity": "info"}, "slack", False),
    ({"destination": "slack"}, "slack", True),
    ({"destination": "slack"}, "mail", False),
    ({"provider": "artistree", "destination": "mail", "state": "failed"}, "mail", True),
    ({"provider": "artistree", "destination": "mail", "state": "reviewed"}, "mail", False),
])
def test_every_given_matcher_must_match(match: dict[str, object], destination: str, expected: bool) -> None:
    assert matches(SilenceMatch.model_validate(match), facts(), destination) is expected


def test_tags_and_project_match_any_value() -> None:
    tagged = facts(tags=("print", "urgent"), project="Site A")
    assert matches(SilenceMatch(tags=["urgent", "x"]), tagged, "slack")
    assert not matches(SilenceMatch(tags=["x"]), tagged, "slack")
    assert matches(SilenceMatch(project=["Site A"]), tagged, "slack")
    assert not matches(SilenceMatch(project=["Site A"]), facts(), "slack")  # no project
    assert not matches(SilenceMatch(state=["Failed"]), facts(state=None), "slack")  # no state


def test_a_silence_is_pending_then_active_then_expired_by_the_clock() -> None:
    s = silence({"provider": "artistree"}, starts=T0 + 60, ends=T0 + 120)
    assert [s.state(T0 + x) for x in (0, 60, 119.9, 120)] == [SilenceState.PENDING, SilenceState.ACTIVE,
                                                              SilenceState.ACTIVE, SilenceState.EXPIRED]
    active = ActiveSilences([s])
    assert active.muting(facts(), "slack", T0) is None
    assert active.muting(facts(), "slack", T0 + 60) is s
    assert active.muting(facts(), "slack", T0 + 120) is None
    assert len(active.live(T0 + 200)) == 0 and len(active.live(T0)) == 1


def test_the_oldest_matching_silence_is_the_one_named() -> None:
    newer = Silence(id="sil_b", match=SilenceMatch(), starts_at=T0, ends_at=T0 + 60, created_at=T0)
    older = Silence(id="sil_a", match=SilenceMatch(destination=["slack"]), starts_at=T0, ends_at=T0 + 60,
                    created_at=T0 - 100)
    found = ActiveSilences([newer, older]).muting(facts(), "slack", T0 + 1)
    assert found is not None and found.id == "sil_a"


def test_the_preview_lists_each_event_and_destination_it_would_mute() -> None:
    recent = [facts(rid="ord-1"), facts("rev.order.attachment_added", rid="TC1", state=None, severity="info",
                                        destinations=("automation",)),
              facts(rid="ord-2", destinations=())]
    found = preview(SilenceMatch(provider=["artistree"], destination=["slack"]), recent)
    assert [(f.resource_id, d) for f, d in found.muted] == [("ord-1", "slack")]
    assert found.events == 3 and not found.everything
    assert mutes_everything(SilenceMatch(provider=["artistree"]), found) is None


def test_a_silence_that_mutes_every_recent_event_or_has_no_matcher_needs_force() -> None:
    recent = [facts(rid="ord-1"), facts(rid="ord-2", severity="warning")]
    broad = SilenceMatch(severity=[Severity.WARNING, Severity.CRITICAL])
    reason = mutes_everything(broad, preview(broad, recent))
    assert reason == "it matches every event of the last 24 h (2) on every destination they went to"
    assert mutes_everything(SilenceMatch(), preview(SilenceMatch(), [])) == (
        "it has no matcher, so it mutes every event on every destination")
    one_destination = SilenceMatch(destination=["slack"])  # the mail still gets them
    assert mutes_everything(one_destination, preview(one_destination, recent)) is None
    narrow = SilenceMatch(provider=["rev"])
    assert mutes_everything(narrow, preview(narrow, [])) is None  # nothing to judge by: allowed


def test_matchers_from_key_value_items() -> None:
    m = parse_matchers(["provider=artistree", "type=*.state_changed", "type=*.gone", "destination = slack"])
    assert m.given() == {"provider": ["artistree"], "type": ["*.state_changed", "*.gone"], "destination": ["slack"]}
    with pytest.raises(ValueError, match=r"unknown matcher key 'colour' \(known: provider, type, rkey, id, "):
        parse_matchers(["colour=red"])
    with pytest.raises(ValueError, match="is not key=value"):
        parse_matchers(["provider"])
    with pytest.raises(ValueError, match="matcher state has no value"):
        parse_matchers(["state="])


def test_times_from_durations_or_iso() -> None:
    assert parse_when("2h", T0) == T0 + 7200
    assert parse_when("1h30m", T0) == T0 + 5400
    assert parse_when("now", T0) == T0
    assert parse_when("2026-11-23T12:00:00Z", T0) == datetime(2026, 11, 23, 12, tzinfo=UTC).timestamp()
    assert parse_when("2026-11-23T13:00:00+01:00", T0) == datetime(2026, 11, 23, 12, tzinfo=UTC).timestamp()
    assert parse_when("2026-11-23T12:00", T0) == datetime(2026, 11, 23, 12, tzinfo=UTC).timestamp()
    for bad in ("tomorrow", "inf", "-2h", ""):
        with pytest.raises(ValueError):
            parse_when(bad, T0)


def test_time_problems_in_one_line() -> None:
    day = 86400.0
    assert time_problem(T0, T0 + 3600, T0, 30 * day) is None
    assert time_problem(T0, T0 - 1, T0, 30 * day) == "its end is in the past"
    assert time_problem(T0 + 7200, T0 + 3600, T0, 30 * day) == "its end is not after its start"
    assert time_problem(T0, T0 + 31 * day, T0, 30 * day) == (
        "it would last longer than the maximum of 30d (silences.max_duration)")
    assert time_problem(T0 - 10 * day, T0 + 29 * day, T0, 30 * day) is None  # counted from now
    year_10000 = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59))).timestamp()
    too_late = "its start or end is after 9999-12-31T23:59:59Z, the latest time a silence can have"
    assert time_problem(year_10000 - 3600, year_10000, T0, 30 * day) == too_late
    assert time_problem(T0 + 1e12, T0 + 1e12 + 60, T0, 30 * day) == too_late  # the console's "starts 1e12"
    assert time_problem(LATEST - 3600, LATEST, T0, 30 * day) is None


def test_routing_facts_round_trip() -> None:
    f = facts(tags=("a",), project="P")
    assert RoutingFacts.from_dict(f.as_dict()) == f
