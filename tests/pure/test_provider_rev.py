"""providers/rev.py's spec on plain values: the seed's orders (tests/fixtures), no server, no session."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from core.diff import diff
from model.errors import MalformedPayload
from model.events import Severity
from model.resources import ResourceRef
from providers.rev import RevSettings, RevSpec

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAMPLE_REF = ResourceRef("rev", "order", "TC432432")


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


@pytest.fixture
def spec() -> RevSpec:
    return RevSpec(RevSettings(client_key=SecretStr("pure"), user_key=SecretStr("pure")))


@pytest.mark.parametrize("status", ["Cancelled", "Canceled", "canceled"])
def test_both_cancel_spellings_are_critical(spec: RevSpec, status: str) -> None:
    old = spec.normalize(SAMPLE_REF, load("rev_transcription_order.json"))
    new = {**old, "status": status}
    (draft,) = spec.classify(SAMPLE_REF, old, new, diff(old, new))
    assert draft.severity is Severity.CRITICAL
    assert draft.data["terminal"] is True


def test_normalize_keeps_what_matters(spec: RevSpec) -> None:
    snap = spec.normalize(SAMPLE_REF, load("rev_transcription_order.json"))
    assert {k: snap[k] for k in ("order_number", "client_ref", "po_number", "price", "status")} == {
        "order_number": "TC432432",
        "client_ref": "6",
        "po_number": "sampleponumber",
        "price": 56,
        "status": "Transcribing",
    }
    assert snap["transcription"] == {"total_length_seconds": 300, "verbatim": True, "timestamps": False}
    # the seed gives media and transcript the same id: both survive, told apart by kind
    assert sorted(a["kind"] for a in snap["attachments"].values()) == ["media", "transcript"]
    assert snap["comments"] == [
        {"by": "John S.", "timestamp": "2003-04-05T12:20:30.567", "text": "Please do it quickly"}
    ]


def test_normalize_caption_order_keys_attachments_by_id(spec: RevSpec) -> None:
    snap = spec.normalize(SAMPLE_REF, load("rev_caption_order.json"))
    assert snap["caption"] == {"total_length_seconds": 300}
    burned = snap["attachments"]["b~AQKhfR8AkCEGMOtQ2AgbbAFC"]
    assert burned["links"] == [
        {
            "rel": "content",
            "href": "https://api.rev.com/api/v1/attachments/b~AQKhfR8AkCEGMOtQ2AgbbAFC/content",
            "content-type": "video/mp4",
        }
    ]


def test_reordering_the_sample_is_not_a_change(spec: RevSpec) -> None:
    payload = load("rev_caption_order.json")
    shuffled = copy.deepcopy(payload)
    shuffled["attachments"] = [shuffled["attachments"][i] for i in (2, 0, 1)]
    shuffled["comments"].insert(0, {"by": "A.", "timestamp": "2003-04-06T00:00:00.000", "text": "x"})
    payload["comments"].append({"by": "A.", "timestamp": "2003-04-06T00:00:00.000", "text": "x"})
    assert spec.normalize(SAMPLE_REF, payload) == spec.normalize(SAMPLE_REF, shuffled)


def test_classify_sample_captioning_to_complete(spec: RevSpec) -> None:
    payload = load("rev_caption_order.json")
    before = copy.deepcopy(payload)
    before["attachments"] = [a for a in before["attachments"] if a["kind"] == "media"]
    before["comments"] = []
    old = spec.normalize(SAMPLE_REF, before)
    new = spec.normalize(SAMPLE_REF, {**payload, "status": "Complete"})
    drafts = spec.classify(SAMPLE_REF, old, new, diff(old, new))
    assert [(d.type, d.severity) for d in drafts] == [
        ("rev.order.state_changed", Severity.INFO),
        ("rev.order.attachment_added", Severity.INFO),
        ("rev.order.attachment_added", Severity.INFO),
        ("rev.order.comment_added", Severity.INFO),
    ]
    assert drafts[0].summary == "Order “6” (TC432432): Captioning → Complete"
    assert {d.data["kind"] for d in drafts[1:3]} == {"caption", "burnedin"}
    burned = next(d for d in drafts if d.data.get("kind") == "burnedin")
    assert burned.data["content_url"].endswith("/b~AQKhfR8AkCEGMOtQ2AgbbAFC/content")
    assert drafts[3].data == {"by": "John S.", "timestamp": "2003-04-05T12:20:30.123", "text": "Please do it quickly"}


def test_title_falls_back_to_order_number(spec: RevSpec) -> None:
    payload = {**load("rev_transcription_order.json"), "client_ref": None}
    old = spec.normalize(SAMPLE_REF, payload)
    new = {**old, "status": "Complete"}
    assert spec.describe(SAMPLE_REF, new).title == "TC432432"
    (draft,) = spec.classify(SAMPLE_REF, old, new, diff(old, new))
    assert draft.summary == "Order “TC432432”: Transcribing → Complete"


@pytest.mark.parametrize(
    "payload",
    [
        {k: v for k, v in load("rev_transcription_order.json").items() if k != "status"},
        {**load("rev_transcription_order.json"), "status": None},
        {**load("rev_transcription_order.json"), "attachments": "none"},
        ["not", "an", "order"],
    ],
)
def test_payload_without_a_usable_shape_is_malformed(spec: RevSpec, payload: Any) -> None:
    with pytest.raises(MalformedPayload):
        spec.normalize(SAMPLE_REF, payload)


def test_settings_keep_a_tail_after_complete() -> None:
    settings = RevSettings(client_key=SecretStr("client-secret-1"), user_key=SecretStr("user-secret-2"))
    assert settings.base_url == "https://api.rev.com"
    assert settings.terminal_tail == settings.reopen_tail == 86400
    explicit = RevSettings(client_key=SecretStr("c"), user_key=SecretStr("u"), terminal_tail=60)
    assert explicit.terminal_tail == 60
    assert "secret-1" not in repr(settings) and "secret-2" not in repr(settings)


def test_describe_the_sample(spec: RevSpec) -> None:
    info = spec.describe(SAMPLE_REF, spec.normalize(SAMPLE_REF, load("rev_transcription_order.json")))
    assert (info.title, info.state, info.terminal, info.project) == ("6", "Transcribing", False, "sampleponumber")
    assert info.url == "https://api.rev.com/api/v1/orders/TC432432"


@pytest.mark.parametrize("status", ["Under Review", "In Progress", ""])
def test_an_unknown_status_stays_open(spec: RevSpec, status: str) -> None:
    old = spec.normalize(SAMPLE_REF, load("rev_transcription_order.json"))
    new = {**old, "status": status}
    (draft,) = spec.classify(SAMPLE_REF, old, new, diff(old, new))
    assert (draft.type, draft.severity, draft.data["terminal"]) == ("rev.order.state_changed", Severity.INFO, False)
    assert spec.describe(SAMPLE_REF, new).terminal is False


def test_new_media_is_not_an_event_but_a_transcript_is(spec: RevSpec) -> None:
    payload = load("rev_transcription_order.json")
    old = spec.normalize(SAMPLE_REF, payload)
    media = {"kind": "media", "name": "More.mp3", "id": "m2"}
    with_media = spec.normalize(SAMPLE_REF, {**payload, "attachments": [*payload["attachments"], media]})
    assert spec.classify(SAMPLE_REF, old, with_media, diff(old, with_media)) == []
    transcript = {"kind": "transcript", "name": "Final.docx", "id": "t2"}
    done = spec.normalize(SAMPLE_REF, {**payload, "attachments": [*payload["attachments"], transcript]})
    (draft,) = spec.classify(SAMPLE_REF, old, done, diff(old, done))
    assert draft.type == "rev.order.attachment_added"
    assert draft.summary == "Order “6” (TC432432): transcript “Final.docx” ready"
    assert draft.data == {"kind": "transcript", "name": "Final.docx", "id": "t2", "content_url": None}


def test_the_same_words_said_twice_are_two_comments(spec: RevSpec) -> None:
    payload = load("rev_transcription_order.json")
    old = spec.normalize(SAMPLE_REF, payload)
    new = spec.normalize(SAMPLE_REF, {**payload, "comments": payload["comments"] * 2})
    (draft,) = spec.classify(SAMPLE_REF, old, new, diff(old, new))
    assert draft.type == "rev.order.comment_added"
    assert draft.summary == "Order “6” (TC432432): comment by John S.: Please do it quickly"
    long = {"by": "Ops", "timestamp": "2003-04-06T00:00:00.000", "text": "x" * 500}
    newer = spec.normalize(SAMPLE_REF, {**payload, "comments": [*payload["comments"], long]})
    (draft,) = spec.classify(SAMPLE_REF, old, newer, diff(old, newer))
    assert draft.summary.endswith(": " + "x" * 119 + "…") and draft.data["text"] == "x" * 500


def test_revs_own_words_for_an_error(spec: RevSpec) -> None:
    assert spec.error_reason(b'{"code": 10001, "message": "Order number is malformed"}') == (
        "Order number is malformed (code 10001)"
    )
    assert spec.error_reason(b'{"message": "Slow down"}') == "Slow down"
    assert spec.error_reason(b'{"detail": "other shape"}') == "other shape"
    assert spec.error_reason(b"") == "" and spec.error_reason(b"<html>") == ""
