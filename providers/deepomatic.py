"""Deepomatic Engage: field work orders (seed 004_*).

A work order has no status field. Its state is derived from `progress_score` (0–100) and
`review_date`: "in progress", "complete" (score 100) and "reviewed" (a back-office review
happened; the usual close, hence terminal). The interesting changes live in the tasks:
each task's `state` carries the analyzed value, the corrected value and a message.

Two things make the raw payload unfit for diffing as is:
- task and task-group ids change when the customer's application is upgraded (the docs
  say so), so tasks are keyed by **name** and no version-bound id reaches a snapshot;
- with `include_inputs=true`, image inputs come as signed URLs (`Expires`, `Signature`)
  that change on every request, so input values other than text are dropped.

Conformity checks (`inputs[].conformity_messages`) are only returned with
`include_inputs=true`: a watch that wants `conformity_error` events sets `include_inputs`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self, TypeGuard
from urllib.parse import quote

import orjson
from pydantic import Field, SecretStr, model_validator

from model.errors import MalformedPayload
from model.events import Change, EventDraft, Severity
from model.resources import ResourceInfo, ResourceRef, Snapshot
from model.values import HttpUrlOrDerived
from providers.auth import StaticHeader
from providers.base import Provider
from providers.shared import progress_bucket
from providers.spec import DAY, ProviderSpec, TailedSettings

__all__ = [
    "STATES",
    "DeepomaticProvider",
    "DeepomaticSettings",
    "DeepomaticSpec",
    "derive_state",
    "progress_bucket",
]

IN_PROGRESS, COMPLETE, REVIEWED = "in progress", "complete", "reviewed"
STATES = (IN_PROGRESS, COMPLETE, REVIEWED)
"""Derived states, in the order a work order normally goes through them."""
TERMINAL = frozenset({REVIEWED})
HOSTS = {
    "eu": "https://api.{site}.customers.deepomatic.com",
    "us": "https://api.{site}.customers.us1.deepomatic.com",
}
TASK_FIELDS = ("analyzed_value", "corrected_value", "is_conformity_validated", "message")
"""What a snapshot keeps of a task's `state`; dates, colours and bounding boxes are left out."""
TOP_FIELDS = (
    "id",
    "name",
    "site_id",
    "progress_score",
    "review_date",
    "create_date",
    "tags",
    "metadata",
    "parameters",
    "field_engineer_name",
    "field_engineer_email",
)
"""Top-level fields a snapshot keeps. `update_date` moves with every analysis (the task
changes say what moved) and `app_version_id` changes on upgrades, which are not events."""


class DeepomaticSettings(TailedSettings):
    """`base_url` is derived from `site` and `region` unless given (the simulator gives it)."""

    base_url: HttpUrlOrDerived = ""
    site: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
    region: Literal["eu", "us"] = "eu"
    api_key: SecretStr
    include_inputs: bool = False
    progress_step: int = Field(default=25, ge=1, le=100)
    stall_defaults: ClassVar[dict[str, float]] = {IN_PROGRESS: 7 * DAY, COMPLETE: 3 * DAY}
    """a work order in progress for a week, or complete and not reviewed for three days"""

    @model_validator(mode="after")
    def _derive_base_url(self) -> Self:
        if not self.base_url:
            self.base_url = HOSTS[self.region].format(site=self.site)
        return self


def derive_state(progress_score: float, review_date: str | None) -> str:
    """The work order's state: the API has no status enum, so it is read off score and review."""
    if review_date:
        return REVIEWED
    if progress_score >= 100:
        return COMPLETE
    return IN_PROGRESS


class DeepomaticSpec(ProviderSpec):
    name = "deepomatic"
    settings_model = DeepomaticSettings
    default_kind = "work_order"
    kinds: ClassVar[tuple[str, ...]] = ("work_order",)
    settings: DeepomaticSettings

    def __init__(self, settings: DeepomaticSettings) -> None:
        super().__init__(settings)
        # without inputs an answer holds no signed URL: byte-equal to the last, unchanged
        self.fingerprint_blanks = None if settings.include_inputs else ()

    def work_order_url(self, wo_id: str) -> str:
        return f"{self.base_url}/v0.2/work-orders/{quote(wo_id, safe='')}/"

    # ---- normalize ----------------------------------------------------------------------

    def normalize(self, ref: ResourceRef, payload: Any) -> Snapshot:
        if not isinstance(payload, dict):
            raise MalformedPayload(f"deepomatic: {ref.key}: payload is not an object")
        score = payload.get("progress_score")
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise MalformedPayload(f"deepomatic: {ref.key}: payload has no numeric progress_score")
        review_date = payload.get("review_date")
        if review_date is not None and not isinstance(review_date, str):
            raise MalformedPayload(f"deepomatic: {ref.key}: review_date is not a string")
        tasks = payload.get("tasks")
        if not isinstance(tasks, list):
            raise MalformedPayload(f"deepomatic: {ref.key}: payload has no tasks list")

        snap: Snapshot = {k: payload[k] for k in TOP_FIELDS if k in payload}
        snap["state"] = derive_state(score, review_date)
        snap["types"] = sorted(
            str(t["name"]) for t in payload.get("types") or () if isinstance(t, dict) and t.get("name")
        )
        snap["tasks"] = _tasks_by_name(tasks)
        inputs = payload.get("inputs")
        if isinstance(inputs, list):
            snap["inputs"] = _inputs(inputs)
            snap["conformity"] = _conformity(inputs, tasks)
        return snap

    def describe(self, ref: ResourceRef, snapshot: Snapshot) -> ResourceInfo:
        state = snapshot.get("state")
        return ResourceInfo(
            title=str(snapshot.get("name") or ref.id),
            url=self.work_order_url(ref.id),
            state=state,
            terminal=state in TERMINAL,
            tags=tuple(str(t) for t in snapshot.get("tags") or ()),
        )

    # ---- classify -----------------------------------------------------------------------

    def classify(self, ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]) -> list[EventDraft]:
        title = new.get("name") or ref.id
        state = new.get("state")
        drafts: list[EventDraft] = []
        was = old.get("state")
        if was != state:
            drafts.append(EventDraft(
                type="deepomatic.work_order.state_changed",
                severity=_state_change_severity(was, state),
                summary=f"Work order “{title}”: {was} → {state}",
                data={"from": was, "to": state, "terminal": state in TERMINAL, "progress": new.get("progress_score"),
                      "changes": [c.as_dict() for c in changes]},
            ))
        if new.get("review_date") and new.get("review_date") != old.get("review_date"):
            drafts.append(EventDraft(
                type="deepomatic.work_order.reviewed",
                severity=Severity.INFO,
                summary=f"Work order “{title}” reviewed ({new['review_date']})",
                data={"review_date": new["review_date"], "progress": new.get("progress_score"), "state": state},
            ))
        drafts.extend(self._progress_events(title, old, new))
        drafts.extend(_task_events(title, old, new))
        drafts.extend(_conformity_events(title, old, new))
        return drafts

    def _progress_events(self, title: str, old: Snapshot, new: Snapshot) -> list[EventDraft]:
        before, after = old.get("progress_score"), new.get("progress_score")
        if not _is_score(before) or not _is_score(after):
            return []
        step = self.settings.progress_step
        if progress_bucket(before, step) == progress_bucket(after, step):
            return []
        return [
            EventDraft(
                type="deepomatic.work_order.progress_changed",
                severity=Severity.INFO,
                summary=f"Work order “{title}”: progress {_pct(before)} → {_pct(after)}",
                data={"previous": before, "progress": after, "step": step, "state": new.get("state")},
            )
        ]


class DeepomaticProvider(Provider):
    spec_type = DeepomaticSpec
    spec: DeepomaticSpec
    settings: DeepomaticSettings

    def make_auth(self) -> StaticHeader:
        """A static API key: nothing to refresh, so a 401 is final."""
        return StaticHeader({"Authorization": f"Token {self.settings.api_key.get_secret_value()}"})

    async def fetch(self, ref: ResourceRef) -> Any:
        return self.parse(await self.fetch_body(ref))

    async def fetch_body(self, ref: ResourceRef) -> bytes:
        include = "true" if self.settings.include_inputs else "false"
        return await self.get_bytes(self.spec.work_order_url(ref.id), params={"include_inputs": include})


# ---- pure helpers -----------------------------------------------------------------------


def _tasks_by_name(tasks: list[Any]) -> dict[str, dict[str, Any]]:
    """Task name → the kept part of its state. A repeated name gets a ` #2` suffix so that
    nothing is silently lost; a task without a name cannot be tracked across upgrades."""
    out: dict[str, dict[str, Any]] = {}
    for task in tasks:
        if not isinstance(task, dict) or not task.get("name"):
            continue
        name = str(task["name"])
        key, n = name, 1
        while key in out:
            n += 1
            key = f"{name} #{n}"
        state = _dict(task.get("state"))
        out[key] = {f: state.get(f) for f in TASK_FIELDS}
    return out


def _inputs(inputs: list[Any]) -> list[dict[str, Any]]:
    """Inputs by name and type; only text values are kept (image values are signed URLs)."""
    out: list[dict[str, Any]] = []
    for item in inputs:
        if not isinstance(item, dict):
            continue
        data = _dict(item.get("data"))
        entry: dict[str, Any] = {"name": item.get("name"), "type": data.get("type")}
        if data.get("type") == "text":
            entry["value"] = data.get("value")
        out.append(entry)
    return sorted(out, key=_sort_key)


def _conformity(inputs: list[Any], tasks: list[Any]) -> list[dict[str, Any]]:
    """Every conformity message, flattened, with the input's name and the names of the tasks
    that analyzed that input (from `state.analyzed_inputs`): ids never reach the snapshot."""
    tasks_of_input: dict[str, set[str]] = {}
    for task in tasks:
        if not isinstance(task, dict) or not task.get("name") or not isinstance(task.get("state"), dict):
            continue
        for analyzed in task["state"].get("analyzed_inputs") or ():
            if isinstance(analyzed, dict) and analyzed.get("input_id"):
                tasks_of_input.setdefault(str(analyzed["input_id"]), set()).add(str(task["name"]))
    out: list[dict[str, Any]] = []
    for item in inputs:
        if not isinstance(item, dict):
            continue
        for msg in item.get("conformity_messages") or ():
            if not isinstance(msg, dict):
                continue
            out.append(
                {
                    "input": item.get("name"),
                    "tasks": sorted(tasks_of_input.get(str(item.get("id")), ())),
                    "code": msg.get("code"),
                    "name": msg.get("name"),
                    "level": msg.get("level"),
                    "message": msg.get("message"),
                }
            )
    return sorted(out, key=_sort_key)


def _task_events(title: str, old: Snapshot, new: Snapshot) -> list[EventDraft]:
    old_tasks, new_tasks = _dict(old.get("tasks")), _dict(new.get("tasks"))
    state = new.get("state")
    drafts: list[EventDraft] = []
    for name in sorted(new_tasks):
        now, before = _dict(new_tasks[name]), _dict(old_tasks.get(name))
        value, previous = now.get("analyzed_value"), before.get("analyzed_value")
        if value is not None and not _same(value, previous):
            drafts.append(
                EventDraft(
                    type="deepomatic.work_order.task_analyzed",
                    severity=Severity.INFO,
                    summary=f"Work order “{title}”: task {name} analyzed: {_show(value)}",
                    data={
                        "task": name,
                        "value": value,
                        "previous": previous,
                        "message": now.get("message"),
                        "is_conformity_validated": now.get("is_conformity_validated"),
                        "state": state,
                    },
                )
            )
        corrected, was_corrected = now.get("corrected_value"), before.get("corrected_value")
        if corrected is not None and not _same(corrected, was_corrected):
            drafts.append(
                EventDraft(
                    type="deepomatic.work_order.task_corrected",
                    severity=Severity.INFO,
                    summary=(f"Work order “{title}”: task {name} corrected: "
                             f"{_correction(value, was_corrected, corrected)}"),
                    data={
                        "task": name,
                        "value": corrected,
                        "previous": was_corrected,
                        "analyzed_value": value,
                        "state": state,
                    },
                )
            )
    return drafts


def _conformity_events(title: str, old: Snapshot, new: Snapshot) -> list[EventDraft]:
    """Error-level conformity messages that were not there before. A snapshot taken without
    inputs has no `conformity` key: turning `include_inputs` on is a baseline, not a flood."""
    if not isinstance(old.get("conformity"), list) or not isinstance(new.get("conformity"), list):
        return []
    seen = {_message_key(m) for m in old["conformity"] if isinstance(m, dict)}
    drafts: list[EventDraft] = []
    for msg in new["conformity"]:
        if not isinstance(msg, dict) or msg.get("level") != "error" or _message_key(msg) in seen:
            continue
        seen.add(_message_key(msg))
        tasks = list(msg.get("tasks") or ())
        where = ", ".join(tasks) or f"input {msg.get('input')}"
        drafts.append(
            EventDraft(
                type="deepomatic.work_order.conformity_error",
                severity=Severity.CRITICAL,
                summary=f"Work order “{title}”: conformity error on {where}: {msg.get('message')}",
                data={
                    "task": tasks[0] if tasks else None,
                    "tasks": tasks,
                    "input": msg.get("input"),
                    "code": msg.get("code"),
                    "check": msg.get("name"),
                    "level": msg.get("level"),
                    "message": msg.get("message"),
                    "state": new.get("state"),
                },
            )
        )
    return drafts


def _state_change_severity(was: str | None, now: str | None) -> Severity:
    """Moving back (a review undone, a score that fell below 100) is worth a look."""
    if was in STATES and now in STATES and STATES.index(now) < STATES.index(was):
        return Severity.WARNING
    return Severity.INFO


def _message_key(msg: dict[str, Any]) -> tuple[Any, ...]:
    return (msg.get("input"), msg.get("code"), msg.get("name"), msg.get("level"), msg.get("message"))


def _correction(analyzed: Any, was_corrected: Any, corrected: Any) -> str:
    """From what to what: the earlier correction, else the analyzed value; a correction to
    the analyzed value itself confirms it (`true → true` read as no change)."""
    if was_corrected is not None:
        return f"{_show(was_corrected)} → {_show(corrected)}"
    if _same(corrected, analyzed):
        return f"{_show(corrected)}, the analyzed value confirmed"
    return f"{_show(analyzed)} → {_show(corrected)}"


def _same(a: Any, b: Any) -> bool:
    """Equal with the same JSON type: `true` is not `1`, `2.0` is `2`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_score(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pct(score: float) -> str:
    return f"{score:g}%"


def _show(value: Any) -> str:
    return orjson.dumps(value).decode() if not isinstance(value, str) else value


def _sort_key(entry: dict[str, Any]) -> bytes:
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
