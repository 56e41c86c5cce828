"""providers/deepomatic.py's spec on plain values: settings, the seed's work orders (tests/fixtures),
every event type; no server, no session."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from core.diff import diff
from model.errors import MalformedPayload
from model.events import EventDraft, Severity
from model.resources import ResourceRef
from providers.deepomatic import DeepomaticSettings, DeepomaticSpec, derive_state, progress_bucket

FIXTURES = Path(__file__).parent.parent / "fixtures"
REF = ResourceRef("deepomatic", "work_order", "1eb136be-65d9-4964-8a8d-1a20c1573d7b")
SPEC = DeepomaticSpec(DeepomaticSettings(site="acme", api_key="k", include_inputs=True))
WITH_INPUTS: dict[str, Any] = orjson.loads((FIXTURES / "deepomatic_work_order_inputs.json").read_bytes())
IMAGE_INPUT = "f5c76f7d-79ad-424f-bca6-5117c48efd9b"


def payload(**fields: Any) -> dict[str, Any]:
    """The seed's work order (with inputs), `fields` changed."""
    return {**copy.deepcopy(WITH_INPUTS), **fields}


def with_task(name: str, **state: Any) -> dict[str, Any]:
    body = payload()
    for task in body["tasks"]:
        if task["name"] == name:
            task["state"].update(state)
    return body


def classify(before: dict[str, Any], after: dict[str, Any], spec: DeepomaticSpec = SPEC) -> list[EventDraft]:
    old, new = spec.normalize(REF, before), spec.normalize(REF, after)
    return spec.classify(REF, old, new, diff(old, new))


def types(drafts: list[EventDraft]) -> list[str]:
    return [d.type for d in drafts]


def test_eu_host_is_derived_from_the_site() -> None:
    settings = DeepomaticSettings(site="acme", api_key="k")
    assert settings.base_url == "https://api.acme.customers.deepomatic.com"


def test_us_host_is_derived_from_the_site() -> None:
    settings = DeepomaticSettings(site="acme", region="us", api_key="k")
    assert settings.base_url == "https://api.acme.customers.us1.deepomatic.com"


def test_explicit_base_url_wins() -> None:
    settings = DeepomaticSettings(site="acme", region="us", api_key="k", base_url="http://127.0.0.1:9/x")
    assert settings.base_url == "http://127.0.0.1:9/x"


def test_site_must_be_a_host_label() -> None:
    with pytest.raises(ValidationError):
        DeepomaticSettings(site="evil.example.com/", api_key="k")


def test_seed_sample_normalizes_with_tasks_by_name_and_no_volatile_values() -> None:
    payload = orjson.loads((FIXTURES / "deepomatic_work_order_inputs.json").read_bytes())
    snap = SPEC.normalize(REF, payload)
    assert snap["state"] == "in progress"
    assert snap["types"] == ["maintenance", "one-equipment"]
    assert snap["tasks"] == {
        "equipment_after_intervention": {
            "analyzed_value": True,
            "corrected_value": False,
            "is_conformity_validated": False,
            "message": "Invalid photo",
        },
        "equipment_after_intervention_degradations": {
            "analyzed_value": 2.0,
            "corrected_value": None,
            "is_conformity_validated": False,
            "message": "Degradations have been spotted on the equipment",
        },
    }
    text = orjson.dumps(snap).decode()
    for volatile in ("Signature", "Expires", "db081122", "2052385d", "update_date", "app_version_id"):
        assert volatile not in text
    assert snap["inputs"] == [
        {"name": "context", "type": "text", "value": "equipment-after-intervention"},
        {"name": "image_input", "type": "image"},
    ]
    assert snap["conformity"] == []


def test_seed_sample_without_inputs_gives_the_same_tasks() -> None:
    with_inputs = SPEC.normalize(
        REF, orjson.loads((FIXTURES / "deepomatic_work_order_inputs.json").read_bytes())
    )
    without = SPEC.normalize(REF, orjson.loads((FIXTURES / "deepomatic_work_order.json").read_bytes()))
    assert without["tasks"] == with_inputs["tasks"]
    assert "inputs" not in without


def test_seed_broken_sample_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        SPEC.parse((FIXTURES / "deepomatic_seed_sample_broken.txt").read_bytes())


@pytest.mark.parametrize(
    "payload",
    [[], {"tasks": []}, {"progress_score": "50", "tasks": []}, {"progress_score": 50}],
)
def test_payload_without_what_a_snapshot_needs_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedPayload):
        SPEC.normalize(REF, payload)


def test_derived_state_and_progress_bands() -> None:
    assert derive_state(50, None) == "in progress"
    assert derive_state(100, None) == "complete"
    assert derive_state(40, "2024-01-01T00:00:00Z") == "reviewed"
    assert progress_bucket(24.9, 25) == 0 and progress_bucket(25, 25) == 1 and progress_bucket(100, 25) == 4


def test_fingerprints_only_without_inputs() -> None:
    assert SPEC.fingerprint_blanks is None  # signed image URLs: a fingerprint would never match
    assert DeepomaticSpec(DeepomaticSettings(site="acme", api_key="k")).fingerprint_blanks == ()


def test_describe_the_sample() -> None:
    info = SPEC.describe(REF, SPEC.normalize(REF, payload()))
    assert (info.title, info.state, info.terminal) == ("work-order", "in progress", False)
    assert info.tags == ("group-1", "group-2")
    assert info.url == f"https://api.acme.customers.deepomatic.com/v0.2/work-orders/{REF.id}/"


# ---- events, one scenario each ---------------------------------------------------------------


def test_new_task_ids_and_signatures_are_no_change() -> None:
    renamed = payload()
    for task in renamed["tasks"]:
        task["state"]["id"] = task["id"] = "upgraded-" + task["name"]
    renamed["inputs"][1]["data"]["value"] += "&Expires=later"
    assert diff(SPEC.normalize(REF, payload()), SPEC.normalize(REF, renamed)) == []


def test_progress_within_a_step_is_no_event_across_one_is_one() -> None:
    assert classify(payload(progress_score=10), payload(progress_score=20)) == []
    (draft,) = classify(payload(progress_score=20), payload(progress_score=30))
    assert (draft.type, draft.severity) == ("deepomatic.work_order.progress_changed", Severity.INFO)
    assert draft.data == {"previous": 20, "progress": 30, "step": 25, "state": "in progress"}
    assert draft.summary == "Work order “work-order”: progress 20% → 30%"


def test_completion_is_a_state_change_and_falling_back_a_warning() -> None:
    drafts = classify(payload(progress_score=80), payload(progress_score=100))
    assert types(drafts) == ["deepomatic.work_order.state_changed", "deepomatic.work_order.progress_changed"]
    state = drafts[0].data
    assert (state["from"], state["to"], state["terminal"]) == ("in progress", "complete", False)
    assert drafts[0].severity is Severity.INFO
    assert {"path": "/progress_score", "old": 80, "new": 100} in drafts[0].data["changes"]
    back = classify(payload(progress_score=100), payload(progress_score=90))
    assert (back[0].type, back[0].severity) == ("deepomatic.work_order.state_changed", Severity.WARNING)


def test_review_closes_the_work_order() -> None:
    after = payload(progress_score=100, review_date="2023-06-01T08:00:00Z")
    drafts = classify(payload(progress_score=100), after)
    assert types(drafts) == ["deepomatic.work_order.state_changed", "deepomatic.work_order.reviewed"]
    assert (drafts[0].data["to"], drafts[0].data["terminal"]) == ("reviewed", True)
    assert drafts[1].data == {"review_date": "2023-06-01T08:00:00Z", "progress": 100, "state": "reviewed"}
    assert SPEC.describe(REF, SPEC.normalize(REF, after)).terminal is True


def test_task_analyzed_and_corrected() -> None:
    task = "equipment_after_intervention_degradations"
    (analyzed,) = classify(payload(), with_task(task, analyzed_value=3.0, message="More spotted"))
    assert analyzed.type == "deepomatic.work_order.task_analyzed"
    assert {k: analyzed.data[k] for k in ("task", "value", "previous", "message")} == {
        "task": task, "value": 3.0, "previous": 2.0, "message": "More spotted"
    }
    assert analyzed.summary == f"Work order “work-order”: task {task} analyzed: 3.0"
    (corrected,) = classify(payload(), with_task(task, corrected_value=1.0))
    assert corrected.type == "deepomatic.work_order.task_corrected"
    assert (corrected.data["value"], corrected.data["previous"], corrected.data["analyzed_value"]) == (1.0, None, 2.0)
    assert classify(payload(), with_task(task, analyzed_value=2)) == []  # 2.0 is 2


def test_a_correction_says_from_what_to_what_and_never_reads_as_no_change() -> None:
    task = "equipment_after_intervention"
    before = with_task(task, analyzed_value=True, corrected_value=None)
    (confirmed,) = classify(before, with_task(task, analyzed_value=True, corrected_value=True))
    assert confirmed.summary == f"Work order “work-order”: task {task} corrected: true, the analyzed value confirmed"
    (changed,) = classify(before, with_task(task, analyzed_value=True, corrected_value=False))
    assert changed.summary.endswith("corrected: true → false")
    (again,) = classify(with_task(task, analyzed_value=True, corrected_value=False),
                        with_task(task, analyzed_value=True, corrected_value=True))
    assert again.summary.endswith("corrected: false → true")  # from the earlier correction


def test_true_is_not_one() -> None:
    task = "equipment_after_intervention"
    (draft,) = classify(with_task(task, analyzed_value=1), with_task(task, analyzed_value=True))
    assert draft.type == "deepomatic.work_order.task_analyzed"


def conformity(level: str, message: str) -> dict[str, Any]:
    body = payload()
    body["inputs"][1]["conformity_messages"] = [{"code": "C1", "name": "blur", "level": level, "message": message}]
    return body


def test_a_conformity_error_is_critical_and_only_once() -> None:
    after = conformity("error", "The photo is blurry")
    (draft,) = classify(payload(), after)
    assert (draft.type, draft.severity) == ("deepomatic.work_order.conformity_error", Severity.CRITICAL)
    assert draft.data["tasks"] == ["equipment_after_intervention", "equipment_after_intervention_degradations"]
    assert (draft.data["task"], draft.data["input"], draft.data["message"]) == (
        "equipment_after_intervention", "image_input", "The photo is blurry"
    )
    assert classify(after, copy.deepcopy(after)) == []


def test_a_conformity_warning_and_turning_inputs_on_are_no_event() -> None:
    assert classify(payload(), conformity("warning", "A bit dark")) == []
    without = orjson.loads((FIXTURES / "deepomatic_work_order.json").read_bytes())
    assert classify(without, conformity("error", "The photo is blurry")) == []
