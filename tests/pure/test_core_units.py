"""The pure core, tested with plain values: diff, digest, events, routes, schedule, backoff, signing."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from core.backoff import delivery_delay, poll_backoff
from core.diff import diff
from core.events import event_id
from core.fingerprint import canonical, digest
from core.route import select
from core.schedule import next_poll_at
from model.events import Change, Event, Severity
from model.resources import ResourceRef
from model.routes import Route, RouteMatch
from model.values import parse_duration
from notifiers.webhook import sign
from providers.base import ProviderSettings
from transport.http import parse_retry_after


def test_standard_webhooks_known_vector() -> None:
    ts = datetime.fromtimestamp(1614265330, tz=UTC)
    got = sign(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_rotation_signs_with_every_secret_and_each_verifies() -> None:
    old, new = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    ts = datetime.now(tz=UTC).replace(microsecond=0)
    header = sign([old, new], "msg_1", ts, b"{}")
    assert len(header.split()) == 2
    for secret in (old, new):
        Webhook(secret).verify(b"{}", {"webhook-id": "msg_1", "webhook-timestamp": str(int(ts.timestamp())),
                                       "webhook-signature": header})


def test_diff_names_json_pointer_paths() -> None:
    old = {"order_state": "In Progress", "tags": ["a"], "project": {"name": "x"}, "gone": 1}
    new = {"order_state": "Failed", "tags": ["a", "b"], "project": {"name": "y"}, "new/key": 2}
    assert diff(old, new) == [
        Change("/gone", 1, None),
        Change("/new~1key", None, 2),
        Change("/order_state", "In Progress", "Failed"),
        Change("/project/name", "x", "y"),
        Change("/tags/1", None, "b"),
    ]
    assert diff(old, old) == []


def test_digest_ignores_key_order() -> None:
    assert digest(canonical({"a": 1, "b": 2})) == digest(canonical({"b": 2, "a": 1}))
    assert digest(canonical({"a": 1})) != digest(canonical({"a": 2}))


def test_event_id_is_deterministic_per_change() -> None:
    assert event_id("artistree:order:1", 3, "t") == event_id("artistree:order:1", 3, "t")
    assert event_id("artistree:order:1", 3, "t") != event_id("artistree:order:1", 4, "t")


def test_resource_key_round_trip_and_bad_key() -> None:
    ref = ResourceRef("rev", "order", "TC:1")
    assert ResourceRef.parse(ref.key) == ref
    with pytest.raises(ValueError):
        ResourceRef.parse("nonsense")


def _event(type_: str, severity: Severity = Severity.INFO, to: str | None = None, provider: str = "artistree",
           tags: tuple[str, ...] = (), project: str | None = None) -> Event:
    return Event("evt_1", type_, provider, {"key": f"{provider}:order:1", "id": "1", "kind": "order"}, 1,
                 "2026-11-23T00:00:00Z", severity, "s", {"to": to} if to else {}, None, tags, project)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (_event("artistree.order.state_changed", Severity.CRITICAL, "Failed"), ["pager", "automation", "all"]),
        (_event("artistree.order.state_changed", Severity.INFO, "Human Certified"), ["automation", "all"]),
        (_event("rev.order.attachment_added", provider="rev"), ["automation", "all"]),
        (_event("rev.order.comment_added", provider="rev"), ["all"]),
        (_event("sartiq.upload_task.error", Severity.CRITICAL, provider="sartiq"), ["pager", "all"]),
        (_event("artistree.order.reviewed", tags=("vip",)), ["vip", "all"]),
        (_event("artistree.order.reviewed", project="Posters"), ["posters", "all"]),
    ],
)
def test_routes_select_exactly_the_right_destinations(event: Event, expected: list[str]) -> None:
    routes = [
        Route(match=RouteMatch(severity=[Severity.CRITICAL]), to=["pager"]),
        Route(match=RouteMatch(type=["rev.order.attachment_added", "artistree.order.state_changed"]),
              to=["automation"]),
        Route(match=RouteMatch(tags=["vip"]), to=["vip"]),
        Route(match=RouteMatch(project=["Posters"]), to=["posters"]),
        Route(match=RouteMatch(state=["failed"], provider=["artistree"]), to=["pager"]),
        Route(to=["all"]),
    ]
    assert [s.destination for s in select(event, routes)] == expected


def test_adaptive_intervals() -> None:
    s = ProviderSettings(base_url="http://x", interval_idle=600, terminal_tail=3600, terminal_interval=900)
    now = 10_000.0
    assert next_poll_at(now, interval=60, terminal=False, changed_at=now - 30, settings=s) == now + 60
    assert next_poll_at(now, interval=60, terminal=False, changed_at=now - 5_000, settings=s) == now + 600
    assert next_poll_at(now, interval=60, terminal=True, changed_at=now - 100, settings=s) == now + 900
    assert next_poll_at(now, interval=60, terminal=True, changed_at=now - 4_000, settings=s) is None
    plain = ProviderSettings(base_url="http://x")
    assert next_poll_at(now, interval=60, terminal=True, changed_at=now, settings=plain) is None


def test_delivery_schedule_and_retry_after() -> None:
    rng = random.Random(1)
    schedule = [5.0, 300.0]
    first = delivery_delay(1, schedule, rng=rng)
    assert first is not None and 4.0 <= first <= 6.0
    assert delivery_delay(1, schedule, jitter=0, retry_after=42) == 42
    assert delivery_delay(3, schedule) is None
    assert poll_backoff(1) == 5 and poll_backoff(3) == 20 and poll_backoff(99) == 900


def test_parse_durations_and_retry_after() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("250ms") == 0.25 and parse_duration(7) == 7
    with pytest.raises(ValueError):
        parse_duration("soon")
    assert parse_retry_after("12") == 12 and parse_retry_after(None, default=3) == 3
