"""providers/sartiq.py's spec on plain values: the seed's samples (tests/fixtures), no server, no session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from core.diff import diff
from model.errors import MalformedPayload, ProviderError
from model.events import EventDraft, Severity
from model.resources import ResourceRef
from providers.sartiq import SartiqSettings, SartiqSpec, progress_bucket, stable_url, task_outcome, task_percent

FIXTURES = Path(__file__).parent.parent / "fixtures"
TASK = "208fba0f-9f85-4350-a3c4-b3740ce42257"


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


@pytest.fixture
def spec() -> SartiqSpec:
    return SartiqSpec(SartiqSettings(base_url="https://sartiq.example/", username="u@x", password=SecretStr("p")))


def task_ref(task_id: str) -> ResourceRef:
    return ResourceRef("sartiq", "upload_task", task_id)


def design_ref(set_design_id: str) -> ResourceRef:
    return ResourceRef("sartiq", "set_design", set_design_id)


def task(**fields: Any) -> dict[str, Any]:
    """The seed's upload task with `fields` changed."""
    return {**load("sartiq_upload_task.json"), **fields}


def drafts(spec: SartiqSpec, ref: ResourceRef, before: dict[str, Any], after: dict[str, Any]) -> list[EventDraft]:
    old, new = spec.normalize(ref, before), spec.normalize(ref, after)
    return spec.classify(ref, old, new, diff(old, new))


def test_set_design_status_is_state_changed_if_sartiq_adds_one(spec: SartiqSpec) -> None:
    ref = design_ref("159c568c-9fa6-454e-8fd5-48831493d174")
    old = spec.normalize(ref, {**load("sartiq_set_design.json"), "status": "draft"})
    new = spec.normalize(ref, {**load("sartiq_set_design.json"), "status": "ready"})
    (draft,) = spec.classify(ref, old, new, diff(old, new))
    assert (draft.type, draft.data["from"], draft.data["to"]) == (
        "sartiq.set_design.state_changed",
        "draft",
        "ready",
    )
    assert spec.describe(ref, new).state == "ready"


def test_normalize_sample_task(spec: SartiqSpec) -> None:
    payload = load("sartiq_upload_task.json")
    ref = task_ref(payload["id"])
    snap = spec.normalize(ref, payload)
    assert snap == payload  # nothing volatile in a task
    info = spec.describe(ref, snap)
    assert (info.title, info.state, info.terminal) == (payload["id"], "PENDING", False)
    assert info.project == "2e940e5b-5f3d-43ed-b7bc-8e84b9f0aadb"
    assert info.url == f"{spec.base_url}/api/v1/set-designs/upload-tasks/{payload['id']}"


def test_normalize_sample_set_design_keys_images(spec: SartiqSpec) -> None:
    payload = load("sartiq_set_design.json")
    ref = design_ref(payload["id"])
    snap = spec.normalize(ref, payload)
    assert list(snap["base_images"]) == [
        "942399db-bfb7-44bd-b981-9538c3cda4a6/fe47adb8-f439-48fd-b3de-12992288c30f"
    ]
    assert list(snap["reference_images"]) == ["69ae545b-2414-44ad-ba93-f7e23cf94688"]
    assert list(snap["subject_portraits"]) == ["669213ca-9f2b-4a8b-987f-57c5a43ce469"]
    info = spec.describe(ref, snap)
    assert (info.title, info.state, info.terminal, info.project) == ("string", None, False, payload["id"])


def test_sample_list_page_items_normalize(spec: SartiqSpec) -> None:
    (row,) = load("sartiq_set_designs_page.json")["data"]
    snap = spec.normalize(design_ref(row["id"]), row)
    assert snap["name"] == "string" and len(snap["base_images"]) == 1


def test_reordered_images_are_not_a_change(spec: SartiqSpec) -> None:
    payload = load("sartiq_set_design.json")
    second = {**payload["base_images"][0], "id": "other", "shot_type_id": "shot-2"}
    a = {**payload, "base_images": [payload["base_images"][0], second]}
    b = {**payload, "base_images": [second, payload["base_images"][0]]}
    ref = design_ref(payload["id"])
    assert spec.normalize(ref, a) == spec.normalize(ref, b)


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("upload_task", {k: v for k, v in load("sartiq_upload_task.json").items() if k != "status"}),
        ("upload_task", {**load("sartiq_upload_task.json"), "status": None}),
        ("latest_upload", ["not", "a", "task"]),
        ("set_design", {k: v for k, v in load("sartiq_set_design.json").items() if k != "id"}),
        ("set_design", {**load("sartiq_set_design.json"), "base_images": "none"}),
    ],
)
def test_payload_without_a_usable_shape_is_malformed(
    spec: SartiqSpec, kind: str, payload: Any
) -> None:
    with pytest.raises(MalformedPayload):
        spec.normalize(ResourceRef("sartiq", kind, "x/y"), payload)


def test_stable_url_drops_only_signed_queries() -> None:
    signed = "https://bucket.s3.amazonaws.com/a/b.jpg?X-Amz-Expires=3600&X-Amz-Signature=abc"
    assert stable_url(signed) == "https://bucket.s3.amazonaws.com/a/b.jpg"
    assert stable_url("https://cdn.example.com/a.jpg?w=200") == "https://cdn.example.com/a.jpg?w=200"
    assert stable_url("https://cdn.example.com/a.jpg") == "https://cdn.example.com/a.jpg"


def test_outcomes_progress_and_buckets() -> None:
    assert [
        task_outcome(s) for s in ("Completed", " succeeded ", "ERRORED", "cancelled", "QUEUED", None)
    ] == [
        "success",
        "success",
        "failure",
        "failure",
        None,
        None,
    ]
    assert task_percent({"processed_items": 3, "total_items": 4, "progress": 0}) == 75.0
    assert task_percent({"processed_items": 0, "total_items": 0, "progress": 40}) == 40.0
    assert task_percent({"progress": 250}) == 100.0
    assert task_percent({}) is None
    assert [progress_bucket(p, 25) for p in (0, 24.9, 25, 74, 75, 100)] == [0, 0, 1, 2, 3, 4]


def test_settings_hide_the_password() -> None:
    settings = SartiqSettings(
        base_url="https://sartiq.example", username="u@x", password=SecretStr("p4ss-w0rd")
    )
    assert "p4ss-w0rd" not in repr(settings)
    assert (settings.progress_step, settings.page_size, settings.token_lifetime) == (25, 100, 3600.0)


# ---- upload tasks --------------------------------------------------------------------------


def test_a_task_that_starts_is_state_changed(spec: SartiqSpec) -> None:
    (draft,) = drafts(spec, task_ref(TASK), task(), task(status="PROCESSING", total_items=10))
    assert (draft.type, draft.severity) == ("sartiq.upload_task.state_changed", Severity.INFO)
    assert draft.summary == f"Upload task “{TASK}”: PENDING → PROCESSING"
    assert {k: draft.data[k] for k in ("from", "to", "terminal", "outcome", "task_id", "completed_at")} == {
        "from": "PENDING", "to": "PROCESSING", "terminal": False, "outcome": None, "task_id": TASK,
        "completed_at": None,
    }
    assert {"path": "/status", "old": "PENDING", "new": "PROCESSING"} in draft.data["changes"]


def test_progress_fires_only_across_a_step(spec: SartiqSpec) -> None:
    at = {n: task(status="PROCESSING", total_items=10, processed_items=n) for n in (1, 2, 3)}
    assert drafts(spec, task_ref(TASK), at[1], at[2]) == []  # 10 → 20 %
    (draft,) = drafts(spec, task_ref(TASK), at[2], at[3])  # 20 → 30 %
    assert draft.type == "sartiq.upload_task.progress_changed"
    assert draft.summary == f"Upload task “{TASK}”: progress 20 % → 30 %"
    assert draft.data == {"previous": 20.0, "progress": 30.0, "step": 25, "processed_items": 3, "total_items": 10,
                          "status": "PROCESSING", "task_id": TASK}


def test_skipped_images_are_a_warning(spec: SartiqSpec) -> None:
    before = task(status="PROCESSING", total_items=100, images_processed=1)
    (draft,) = drafts(spec, task_ref(TASK), before, {**before, "images_skipped": 2})
    assert (draft.type, draft.severity) == ("sartiq.upload_task.images_skipped", Severity.WARNING)
    assert draft.summary == f"Upload task “{TASK}”: 2 images skipped (2 in all)"
    assert draft.data == {"previous": 0, "images_skipped": 2, "added": 2, "images_processed": 1, "total_items": 100,
                          "task_id": TASK}


def test_failure_with_an_error_is_critical(spec: SartiqSpec) -> None:
    before = task(status="PROCESSING")
    after = task(status="FAILED", error_message="ZIP archive is corrupted", completed_at="2022-04-13T16:00:00Z")
    state, error = drafts(spec, task_ref(TASK), before, after)
    assert (state.type, state.severity) == ("sartiq.upload_task.state_changed", Severity.CRITICAL)
    assert (state.data["to"], state.data["terminal"], state.data["outcome"]) == ("FAILED", True, "failure")
    assert (error.type, error.severity) == ("sartiq.upload_task.error", Severity.CRITICAL)
    assert error.data == {"error_message": "ZIP archive is corrupted", "status": "FAILED", "task_id": TASK}
    long = "x" * 300
    (_, error) = drafts(spec, task_ref(TASK), before, {**after, "error_message": long})
    assert error.summary == f"Upload task “{TASK}”: error: " + "x" * 199 + "…"


def test_completed_at_alone_is_a_state_change(spec: SartiqSpec) -> None:
    before = task(status="VALIDATING")
    (draft,) = drafts(spec, task_ref(TASK), before, {**before, "completed_at": "2022-04-13T16:00:00Z"})
    assert draft.summary == f"Upload task “{TASK}”: VALIDATING, completed"
    assert draft.data["terminal"] is True
    assert spec.describe(task_ref(TASK), spec.normalize(task_ref(TASK), {**before, "completed_at": "x"})).terminal


def test_latest_upload_follows_a_new_task_against_a_fresh_start(spec: SartiqSpec) -> None:
    ref = ResourceRef("sartiq", "latest_upload", "2e940e5b-5f3d-43ed-b7bc-8e84b9f0aadb/subject")
    first = task(status="COMPLETED", total_items=4, processed_items=4, images_skipped=1,
                 completed_at="2022-04-13T16:00:00Z", error_message="one image skipped")
    second = task(id="second-task", status="PROCESSING", total_items=4, processed_items=1, images_skipped=1,
                  error_message="one image skipped")
    got = drafts(spec, ref, first, second)
    assert [d.type for d in got] == [
        "sartiq.latest_upload.new_task", "sartiq.latest_upload.state_changed", "sartiq.latest_upload.progress_changed",
        "sartiq.latest_upload.images_skipped", "sartiq.latest_upload.error",
    ]
    assert got[0].data == {"previous_task_id": TASK, "task_id": "second-task", "status": "PROCESSING"}
    assert got[0].summary == f"Latest upload “{ref.id}”: new upload task second-task (PROCESSING)"
    assert (got[2].data["previous"], got[2].data["progress"]) == (0.0, 25.0)
    assert (got[3].data["previous"], got[3].data["added"]) == (0, 1)
    info = spec.describe(ref, spec.normalize(ref, second))
    set_design_id = ref.id.split("/")[0]
    assert (info.state, info.terminal, info.project) == ("PROCESSING", False, set_design_id)
    assert info.url == f"https://sartiq.example/api/v1/set-designs/{set_design_id}/base-images/upload-task?subject_id=subject"


def test_latest_upload_id_needs_two_parts(spec: SartiqSpec) -> None:
    with pytest.raises(ProviderError, match="set_design_id"):
        spec.resource_url(ResourceRef("sartiq", "latest_upload", "only-one-part"))


# ---- set designs --------------------------------------------------------------------------


def image(subject: str, shot: str, image_id: str) -> dict[str, Any]:
    url = f"https://bucket.s3.amazonaws.com/{image_id}.jpg?X-Amz-Signature={image_id}"
    return {"id": image_id, "subject_id": subject, "shot_type_id": shot, "image_url": url}


def test_base_images_added_a_subject_and_removed(spec: SartiqSpec) -> None:
    payload = load("sartiq_set_design.json")
    ref = design_ref(payload["id"])
    before = {**payload, "name": "Beach house", "base_images": [image("s0", "front", "a")]}
    after = {**before, "base_images": [image("s1", "front", "b"), image("s1", "back", "c")]}
    added, subject, removed = drafts(spec, ref, before, after)
    assert added.summary == "Set design “Beach house”: 2 base images added (2 in all)"
    assert [i["shot_type_id"] for i in added.data["images"]] == ["back", "front"]
    assert subject.data == {"subject_id": "s1", "shot_type_ids": ["back", "front"], "count": 2}
    assert subject.summary == "Set design “Beach house”: base images for subject s1 (2 shot types)"
    assert removed.data == {"images": [{"id": "a", "subject_id": "s0", "shot_type_id": "front"}], "count": 1,
                            "total": 2}
    assert [d.type for d in (added, subject, removed)] == [
        "sartiq.set_design.base_images_added",
        "sartiq.set_design.subject_added",
        "sartiq.set_design.base_images_removed",
    ]


def test_the_same_shot_under_a_new_id_or_a_new_signature_is_no_event(spec: SartiqSpec) -> None:
    payload = load("sartiq_set_design.json")
    ref = design_ref(payload["id"])
    before = {**payload, "base_images": [image("s", "front", "a")]}
    signed_again = image("s", "front", "a")["image_url"].replace("Signature=a", "Signature=b")
    resigned = {**payload, "base_images": [{**image("s", "front", "a"), "image_url": signed_again}]}
    assert spec.normalize(ref, before) == spec.normalize(ref, resigned)
    replaced = {**payload, "base_images": [image("s", "front", "z")]}
    assert diff(spec.normalize(ref, before), spec.normalize(ref, replaced))  # stored, but nothing to tell
    assert drafts(spec, ref, before, replaced) == []
