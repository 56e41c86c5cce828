"""providers/artistree.py's spec on plain values: the seed's order (tests/fixtures), no server, no session."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from core.diff import diff
from model.errors import MalformedPayload
from model.events import Severity
from model.resources import ResourceRef, Snapshot
from providers.artistree import ArtistreeSettings, ArtistreeSpec

FIXTURE = Path(__file__).parent.parent / "fixtures" / "artistree_order.json"
SAMPLE: dict[str, Any] = json.loads(FIXTURE.read_text())


@pytest.fixture
def spec() -> ArtistreeSpec:
    return ArtistreeSpec(ArtistreeSettings(client_id="pure", client_secret="pure"))


def ref(order_id: str) -> ResourceRef:
    return ResourceRef("artistree", "order", order_id)


@pytest.fixture
def base(spec: ArtistreeSpec) -> Snapshot:
    return spec.normalize(ref(SAMPLE["order_id"]), copy.deepcopy(SAMPLE))


def changed(base: Snapshot, **fields: Any) -> Snapshot:
    new = copy.deepcopy(base)
    new.update(fields)
    return new


def classify(spec: ArtistreeSpec, old: Snapshot, new: Snapshot) -> dict[str, Any]:
    drafts = spec.classify(ref(old["order_id"]), old, new, diff(old, new))
    by_type = {d.type: d for d in drafts}
    assert len(by_type) == len(drafts), "one event of each type per change"
    return by_type


def test_fixture_has_the_seed_shape(base: Snapshot) -> None:
    payload = SAMPLE
    assert len(payload["order_id"]) == 36 and payload["order_state"] == "In Progress"
    assert payload["asset_preview_url"].startswith("https://") and "asset_preview_url" not in base


def test_in_progress_to_failed_is_critical_and_terminal(spec: ArtistreeSpec, base: Snapshot) -> None:
    events = classify(spec, base, changed(base, order_state="Failed"))
    assert list(events) == ["artistree.order.state_changed"]
    event = events["artistree.order.state_changed"]
    assert event.severity is Severity.CRITICAL
    assert event.data["from"] == "In Progress" and event.data["to"] == "Failed" and event.data["terminal"] is True
    assert event.data["changes"] == [{"path": "/order_state", "old": "In Progress", "new": "Failed"}]
    assert "Harbor Lights Poster v3" in event.summary and "In Progress → Failed" in event.summary


def test_in_progress_to_human_certified_is_info_and_terminal(spec: ArtistreeSpec, base: Snapshot) -> None:
    event = classify(spec, base, changed(base, order_state="Human Certified"))["artistree.order.state_changed"]
    assert event.severity is Severity.INFO
    assert (event.data["to"], event.data["terminal"]) == ("Human Certified", True)


def test_action_required_is_critical_but_not_terminal(spec: ArtistreeSpec, base: Snapshot) -> None:
    event = classify(spec, base, changed(base, order_state="Action Required"))["artistree.order.state_changed"]
    assert event.severity is Severity.CRITICAL and event.data["terminal"] is False


def test_reviewed_names_the_reviewer(spec: ArtistreeSpec, base: Snapshot) -> None:
    new = changed(
        base, order_state="Reviewed", reviewed_by="qa.lead@northlight.studio", review_timestamp="2026-11-23T10:15:02Z"
    )
    events = classify(spec, base, new)
    assert set(events) == {"artistree.order.state_changed", "artistree.order.reviewed"}
    reviewed = events["artistree.order.reviewed"]
    assert reviewed.severity is Severity.INFO
    assert reviewed.data == {
        "reviewed_by": "qa.lead@northlight.studio",
        "review_timestamp": "2026-11-23T10:15:02Z",
        "state": "Reviewed",
    }


def test_analysis_failed_reports_only_new_items(spec: ArtistreeSpec, base: Snapshot) -> None:
    old = changed(base, analysis_failed_items=["Shading"])
    events = classify(spec, old, changed(base, analysis_failed_items=["Shading", "Line Art"]))
    event = events["artistree.order.analysis_failed"]
    assert event.severity is Severity.WARNING and event.data["items"] == ["Line Art"]
    assert "artistree.order.analysis_failed" not in classify(spec, old, changed(base, analysis_failed_items=[]))


def test_annotations_changed_counts_them(spec: ArtistreeSpec, base: Snapshot) -> None:
    extra = copy.deepcopy(base["annotations"][0])
    extra["id"] = "0b6f3d2e-5a41-4c8e-9d27-1e3f4a5b6c7d"
    extra["properties"]["needs_remediation"] = True
    events = classify(spec, base, changed(base, annotations=[*base["annotations"], extra]))
    assert list(events) == ["artistree.order.annotations_changed"]
    assert events["artistree.order.annotations_changed"].data == {"count_before": 1, "count_after": 2}


def test_confidence_changed(spec: ArtistreeSpec, base: Snapshot) -> None:
    events = classify(spec, base, changed(base, confidence=0.97))
    assert list(events) == ["artistree.order.confidence_changed"]
    assert events["artistree.order.confidence_changed"].data == {"from": 0.42, "to": 0.97}


def test_no_change_no_event(spec: ArtistreeSpec, base: Snapshot) -> None:
    assert classify(spec, base, copy.deepcopy(base)) == {}


def test_describe_gives_title_state_tags_and_project(spec: ArtistreeSpec, base: Snapshot) -> None:
    info = spec.describe(ref(base["order_id"]), changed(base, order_state="Human Certified"))
    assert info.title == "Harbor Lights Poster v3"
    assert (info.state, info.terminal) == ("Human Certified", True)
    assert info.tags == ("print", "client-a") and info.project == "Spring Campaign 2026"
    assert info.url and info.url.endswith(f"/v1/orders/{base['order_id']}")


def test_payload_without_order_state_is_malformed(spec: ArtistreeSpec) -> None:
    payload = copy.deepcopy(SAMPLE)
    del payload["order_state"]
    with pytest.raises(MalformedPayload):
        spec.normalize(ref(payload["order_id"]), payload)
    with pytest.raises(MalformedPayload):
        spec.normalize(ref("x"), ["not", "an", "object"])


def test_presigned_urls_never_reach_a_snapshot(spec: ArtistreeSpec) -> None:
    rotated = copy.deepcopy(SAMPLE)
    rotated["asset_preview_url"] += "&X-Amz-Date=later"
    for layer in rotated["layers_info"]:
        layer["layer_url"] += "&again"
    first, second = spec.normalize(ref(SAMPLE["order_id"]), SAMPLE), spec.normalize(ref(SAMPLE["order_id"]), rotated)
    assert first == second and "asset_preview_url" not in first
    assert first["layers_info"] and all(set(layer) == {"layer_name"} for layer in first["layers_info"])
    assert set(spec.fingerprint_blanks or ()) == {"asset_preview_url", "layer_url"}


def test_a_preview_keeps_its_state_and_drops_the_preview_url(spec: ArtistreeSpec) -> None:
    preview = {k: SAMPLE[k] for k in ("order_id", "order_title", "order_state", "asset_preview_url")}
    assert spec.normalize_preview(ref(SAMPLE["order_id"]), preview) == {
        "order_id": SAMPLE["order_id"], "order_title": "Harbor Lights Poster v3", "order_state": "In Progress"
    }
    with pytest.raises(MalformedPayload):
        spec.normalize_preview(ref("x"), {"order_id": "x"})


def test_discovered_and_gone_name_the_order_and_its_state(spec: ArtistreeSpec, base: Snapshot) -> None:
    found = spec.discovered(ref(base["order_id"]), base)
    assert (found.type, found.severity) == ("artistree.order.discovered", Severity.INFO)
    assert found.summary == "Order “Harbor Lights Poster v3” discovered (In Progress)"
    assert found.data == {"state": "In Progress", "terminal": False}
    gone = spec.gone(ref(base["order_id"]), base)
    assert (gone.type, gone.severity) == ("artistree.order.gone", Severity.WARNING)
    assert gone.data == {"last_state": "In Progress"}
    assert gone.summary == "Order “Harbor Lights Poster v3” is gone (404)"


def test_a_body_that_is_not_json_is_malformed(spec: ArtistreeSpec) -> None:
    assert spec.parse(b'{"order_state": "Failed"}') == {"order_state": "Failed"}
    with pytest.raises(MalformedPayload, match="artistree: body is not JSON"):
        spec.parse(b"<html>")
