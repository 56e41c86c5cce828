"""What a provider, a header or a stored key may send that the code did not expect stays
one resource's failure (counted, logged with it), never a batch's or a tick's. Pure."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from core.backoff import poll_backoff
from core.decide import Batch, Changed, Failed, Failure, Parsed, Watch, decide, observe
from model.resources import ResourceRef
from providers.artistree import ArtistreeProvider, ArtistreeSettings
from providers.auth import ClientCredentials
from transport.http import MAX_RETRY_AFTER, parse_retry_after
from worker.jobs import plan_polls

FIXTURE = Path(__file__).parents[1] / "fixtures" / "artistree_order.json"
REF = ResourceRef("artistree", "order", "o-1")


@pytest.fixture
def provider() -> ArtistreeProvider:
    return ArtistreeProvider(ArtistreeSettings(base_url="http://127.0.0.1:1", client_id="x", client_secret="x"),
                             None)  # type: ignore[arg-type]


def order(**fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = copy.deepcopy(json.loads(FIXTURE.read_text()))
    payload.update(fields)
    return payload


@pytest.mark.parametrize("fields", [{"tags": 5}, {"tags": True}])
def test_a_field_of_an_unexpected_type_at_first_sight_is_a_malformed_payload(
    provider: ArtistreeProvider, fields: dict[str, Any]
) -> None:
    """`describe` met `"tags": 5` with a TypeError at the baseline, which is never recorded:
    every poll of the order failed its whole batch."""
    seen = observe(REF, provider.normalize(REF, order(**fields)))
    decision = decide(None, seen, Watch(60.0), Batch(provider, 1_700_000_000.0, "ep"))
    assert isinstance(decision, Failed) and decision.kind is Failure.MALFORMED
    assert "unexpected TypeError" in decision.reason


def test_a_change_of_a_field_to_an_unexpected_type_is_a_malformed_payload(provider: ArtistreeProvider) -> None:
    """`classify` counted annotations with len(): one number changed to another raised."""
    batch = Batch(provider, 1_700_000_000.0, "ep")
    before = observe(REF, provider.normalize(REF, order(annotations=3)))
    first = decide(None, before, Watch(60.0), batch)
    assert isinstance(first, Changed)
    after = observe(REF, provider.normalize(REF, order(annotations=4)))
    assert isinstance(after, Parsed) and isinstance(before, Parsed)
    decision = decide(first.record, replace(after, old=before.snapshot), Watch(60.0), batch)
    assert isinstance(decision, Failed) and decision.kind is Failure.MALFORMED


def test_a_resource_failing_for_weeks_backs_off_at_the_cap_not_an_overflow() -> None:
    assert poll_backoff(1025) == 900.0 and poll_backoff(10**6) == 900.0


@pytest.mark.parametrize("header", ["inf", "1e400", "Fri, 31 Dec 9999 23:59:59 GMT", "99999999"])
def test_a_retry_after_past_a_day_is_a_day(header: str) -> None:
    assert parse_retry_after(header) == MAX_RETRY_AFTER


def test_a_retry_after_that_is_no_number_is_the_default() -> None:
    assert parse_retry_after("nan", default=3.0) == 3.0 and parse_retry_after("-inf") == 0.0


@pytest.mark.parametrize("expires_in", ["3600s", [1], {}, "inf", -5, None])
def test_a_token_lifetime_that_cannot_be_read_is_the_default(expires_in: object) -> None:
    grant = ClientCredentials("artistree", "https://auth.example/t", "client", SecretStr("s"), scope=None,
                              timeout=5.0)
    assert grant.lifetime({"access_token": "t", "expires_in": expires_in}, "t") == grant.default_lifetime
    assert grant.lifetime({"access_token": "t", "expires_in": "60"}, "t") == 60.0


def test_a_due_member_that_names_no_resource_goes_to_a_poll_that_counts_it() -> None:
    claimed = [("artistree:order:a", 1.0), ("artistree:order:", 1.0), ("nonsense", 1.0), ("rev:scan:s", 1.0)]
    jobs = plan_polls(claimed, 0.0, 10)
    assert sorted(r for j in jobs for r in j.rkeys) == sorted(r for r, _ in claimed)
    assert [j.rkeys for j in jobs if j.scan] == [("rev:scan:s",)]
