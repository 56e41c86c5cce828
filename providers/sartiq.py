"""Sartiq: AI set designs and their base-image upload tasks (seed 003_*).

Auth is the OAuth2 password flow: `POST /api/v1/login/access-token` with a form-encoded
username and password answers `{access_token, token_type}`; the token goes out as
`Authorization: Bearer`. The seed says nothing of its lifetime (about an hour in
practice): `expires_in` is used if the answer has one, else the JWT's `exp`, else
`token_lifetime`. Errors are FastAPI's `{"detail": "..."}`.

Three kinds of resource:
- `upload_task` (id: the task id): `GET /api/v1/set-designs/upload-tasks/{task_id}`;
- `latest_upload` (id: `{set_design_id}/{subject_id}`): the most recent upload task of a
  set design and subject, `GET /api/v1/set-designs/{set_design_id}/base-images/upload-task?subject_id=`;
  its task id changes when someone uploads again;
- `set_design` (id: the set design id): `GET /api/v1/set-designs/{id}`; a scan pages
  through `GET /api/v1/set-designs/?skip=&limit=`.

A task's `status` enum is not documented: unknown values are open, the usual success and
failure spellings are recognised without case, and `completed_at` set is terminal too.
A set design has no status and no completion fields: what can be watched is its base
images, keyed by (subject, shot type) so that a full-replace update that re-creates the
same images under new ids is not news.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import orjson
from pydantic import Field, SecretStr

from model.errors import MalformedPayload, ProviderError
from model.events import Change, EventDraft, Severity
from model.resources import ResourceInfo, ResourceRef, ScanItem, Snapshot
from model.values import Duration
from providers.auth import PasswordGrant
from providers.base import Provider
from providers.shared import count, plural, progress_bucket, short, stable_url, without_signatures
from providers.spec import NonBlank, ProviderSpec, ScanFilter, TailedSettings

__all__ = [
    "FAILURE_STATUSES", "SUCCESS_STATUSES", "SartiqProvider", "SartiqSettings", "SartiqSpec", "is_task_terminal",
    "progress_bucket", "stable_url", "task_outcome", "task_percent",
]

TOKEN_PATH = "/api/v1/login/access-token"
SET_DESIGNS = "/api/v1/set-designs"
TASK_KINDS = frozenset({"upload_task", "latest_upload"})
SUCCESS_STATUSES = frozenset({"completed", "complete", "success", "succeeded", "done", "finished"})
FAILURE_STATUSES = frozenset({"failed", "failure", "error", "errored", "cancelled", "canceled"})
IMAGE_LISTS = ("base_images", "reference_images", "subject_portraits")
MAX_PAGES = 100_000  # a guard against a list that never ends
NOUNS = {"upload_task": "Upload task", "latest_upload": "Latest upload", "set_design": "Set design"}

Outcome = Literal["success", "failure"]


class SartiqSettings(TailedSettings):
    """The seed names no production host, so `base_url` has no default."""

    username: str = Field(min_length=1)
    password: SecretStr
    progress_step: int = Field(default=25, ge=1, le=100, description="progress events every this many percent")
    token_lifetime: Duration = Field(default=3600.0, description="when the token answer says nothing")
    organization_id: str | None = Field(default=None, description="sent as ?organization_id= on every request")
    page_size: int = Field(default=100, ge=1, le=1000, description="`limit` of a set-design scan page")
    stall_defaults: ClassVar[dict[str, float]] = {"PENDING": 3600.0, "PROCESSING": 6 * 3600.0}  # a task's


# ---- pure helpers: status, progress ---------------------------------------------


def task_outcome(status: Any) -> Outcome | None:
    """ "success", "failure", or None for an open (or unknown) status."""
    if not isinstance(status, str):
        return None
    folded = status.strip().casefold()
    if folded in SUCCESS_STATUSES:
        return "success"
    if folded in FAILURE_STATUSES:
        return "failure"
    return None


def is_task_terminal(snapshot: Snapshot) -> bool:
    return task_outcome(snapshot.get("status")) is not None or bool(snapshot.get("completed_at"))


def task_percent(snapshot: Snapshot) -> float | None:
    """How far a task is, in percent. `processed_items / total_items` when there are items
    (self-describing), else `progress` (an integer the seed does not define further,
    read as a percentage), clamped to 0–100."""
    processed, total = count(snapshot.get("processed_items")), count(snapshot.get("total_items"))
    if processed is not None and total:
        return max(0.0, min(100.0, processed * 100.0 / total))
    progress = snapshot.get("progress")
    if isinstance(progress, int | float) and not isinstance(progress, bool):
        return max(0.0, min(100.0, float(progress)))
    return None


def _split_latest_id(rid: str) -> tuple[str, str]:
    set_design_id, sep, subject_id = rid.partition("/")
    if not (sep and set_design_id and subject_id) or "/" in subject_id:
        raise ProviderError(f"sartiq: latest_upload id must be {{set_design_id}}/{{subject_id}}, got {rid!r}")
    return set_design_id, subject_id


# ---- the spec: URLs, normalize, describe, classify ------------------------------------


class SartiqScan(ScanFilter):
    organization_id: NonBlank | None = None
    owner_id: NonBlank | None = None


class SartiqSpec(ProviderSpec):
    name = "sartiq"
    settings_model = SartiqSettings
    default_kind = "upload_task"
    kinds: ClassVar[tuple[str, ...]] = ("upload_task", "set_design", "latest_upload", "scan")
    scan_filter = SartiqScan
    settings: SartiqSettings

    def resource_url(self, ref: ResourceRef) -> tuple[str, dict[str, str]]:
        """The URL and query of one resource."""
        if ref.kind == "upload_task":
            return f"{self.base_url}{SET_DESIGNS}/upload-tasks/{quote(ref.id, safe='')}", {}
        if ref.kind == "set_design":
            return f"{self.base_url}{SET_DESIGNS}/{quote(ref.id, safe='')}", {}
        if ref.kind == "latest_upload":
            set_design_id, subject_id = _split_latest_id(ref.id)
            url = f"{self.base_url}{SET_DESIGNS}/{quote(set_design_id, safe='')}/base-images/upload-task"
            return url, {"subject_id": subject_id}
        raise ProviderError(f"sartiq: unknown kind {ref.kind!r} (known: {', '.join(self.kinds)})")

    def normalize(self, ref: ResourceRef, payload: Any) -> Snapshot:
        if not isinstance(payload, dict):
            raise MalformedPayload(f"sartiq: {ref.key}: payload is not an object")
        if ref.kind in TASK_KINDS:
            if not isinstance(payload.get("status"), str):
                raise MalformedPayload(f"sartiq: {ref.key}: upload task has no status")
            return {k: without_signatures(v) for k, v in payload.items()}
        if ref.kind == "set_design":
            return _normalize_set_design(ref, payload)
        raise MalformedPayload(f"sartiq: {ref.key}: unknown kind {ref.kind!r}")

    def describe(self, ref: ResourceRef, snapshot: Snapshot) -> ResourceInfo:
        url, params = self.resource_url(ref)
        if params:
            url += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
        if ref.kind == "set_design":
            status = snapshot.get("status")
            return ResourceInfo(title=str(snapshot.get("name") or ref.id), url=url,
                                state=status if isinstance(status, str) else None, terminal=False, project=ref.id)
        project = snapshot.get("set_design_id") or (ref.id.partition("/")[0] if ref.kind == "latest_upload" else None)
        return ResourceInfo(title=ref.id, url=url, state=snapshot.get("status"), terminal=is_task_terminal(snapshot),
                            project=str(project) if project else None)

    def severity_of_state(self, state: str | None) -> Severity:
        return Severity.CRITICAL if task_outcome(state) == "failure" else Severity.INFO

    def label(self, ref: ResourceRef, snapshot: Snapshot) -> str:
        return _label(ref, snapshot)

    def classify(self, ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]) -> list[EventDraft]:
        if ref.kind in TASK_KINDS:
            return _task_events(ref, old, new, changes, self.settings.progress_step)
        if ref.kind == "set_design":
            return _set_design_events(ref, old, new, changes)
        return []


# ---- the provider: login, fetch, scan ---------------------------------------------------


class SartiqProvider(Provider):
    spec_type = SartiqSpec
    spec: SartiqSpec
    settings: SartiqSettings

    def make_auth(self) -> PasswordGrant:
        s = self.settings
        return PasswordGrant(self.name, f"{self.base_url}{TOKEN_PATH}", s.username, s.password, timeout=s.timeout,
                             default_lifetime=s.token_lifetime)

    def _params(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        params = dict(extra or {})
        if self.settings.organization_id:
            params.setdefault("organization_id", self.settings.organization_id)
        return params

    async def fetch(self, ref: ResourceRef) -> Any:
        url, params = self.spec.resource_url(ref)
        return await self.get_json(url, params=self._params(params))

    async def scan(self, ref: ResourceRef, spec: Mapping[str, str]) -> AsyncIterator[list[ScanItem]]:
        """Every set design visible to the user (`organization_id`/`owner_id` in the spec
        narrow it), page by page with skip/limit. The list ends at an empty page, or at a
        short one unless `count` says there is more; a set design that moves between pages
        while the scan runs is listed once."""
        limit = self.settings.page_size
        filters = {k: str(spec[k]) for k in ("organization_id", "owner_id") if spec.get(k)}
        seen: set[str] = set()
        skip = 0
        for _ in range(MAX_PAGES):
            params = self._params({**filters, "skip": str(skip), "limit": str(limit)})
            body = await self.get_json(f"{self.base_url}{SET_DESIGNS}/", params=params)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise MalformedPayload("sartiq: set-design list has no data array")
            rows = body["data"]
            items = []
            for row in rows:
                if isinstance(row, dict) and isinstance(row.get("id"), str) and row["id"] not in seen:
                    seen.add(row["id"])
                    items.append(ScanItem(ResourceRef(self.name, "set_design", row["id"]), row))
            yield items
            skip += len(rows)
            total = count(body.get("count"))
            if not rows or (len(rows) < limit and not (total is not None and skip < total)):
                return


# ---- set designs ------------------------------------------------------------------------


def _normalize_set_design(ref: ResourceRef, payload: dict[str, Any]) -> Snapshot:
    if not isinstance(payload.get("id"), str) or not payload["id"]:
        raise MalformedPayload(f"sartiq: {ref.key}: set design has no id")
    snap: Snapshot = {k: without_signatures(v) for k, v in payload.items() if k not in IMAGE_LISTS}
    for key in IMAGE_LISTS:
        value = payload.get(key)
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise MalformedPayload(f"sartiq: {ref.key}: {key} is not a list of objects")
        key_of = _base_image_key if key == "base_images" else _image_id
        snap[key] = _keyed([without_signatures(v) for v in value], key_of)
    return snap


def _base_image_key(image: dict[str, Any]) -> str:
    """A base image is what the set design has for one subject and one shot type
    (`GET …/{id}/base-image?subject_id=&shot_type_id=` finds it by those)."""
    return f"{image.get('subject_id')}/{image.get('shot_type_id')}"


def _image_id(image: dict[str, Any]) -> str:
    return str(image.get("id"))


def _keyed(items: list[dict[str, Any]], key_of: Any) -> dict[str, dict[str, Any]]:
    """Items by key, so that the API listing them in another order is not a change; a
    repeated key gets a `#2` suffix rather than losing an item."""
    out: dict[str, dict[str, Any]] = {}
    for item in sorted(items, key=lambda i: orjson.dumps(i, option=orjson.OPT_SORT_KEYS)):
        key = base = key_of(item)
        n = 1
        while key in out:
            n += 1
            key = f"{base}#{n}"
        out[key] = item
    return out


def _images(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    value = snapshot.get("base_images")
    return {k: v for k, v in value.items() if isinstance(v, dict)} if isinstance(value, dict) else {}


def _subjects(images: dict[str, dict[str, Any]]) -> set[str]:
    return {str(i.get("subject_id")) for i in images.values()}


def _image_brief(image: dict[str, Any]) -> dict[str, Any]:
    return {k: image.get(k) for k in ("id", "subject_id", "shot_type_id")}


def _set_design_events(ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]) -> list[EventDraft]:
    """Base images added or removed, a subject newly covered (the observable side of a
    fulfilled completion request), and a state change should Sartiq add a `status`."""
    label = _label(ref, new)
    drafts: list[EventDraft] = []
    was, now = old.get("status"), new.get("status")
    if (was is not None or now is not None) and was != now:
        drafts.append(EventDraft("sartiq.set_design.state_changed", Severity.INFO, f"{label}: {was} → {now}", {
            "from": was, "to": now, "terminal": False, "changes": [c.as_dict() for c in changes]}))
    before, after = _images(old), _images(new)
    added = [after[k] for k in sorted(after.keys() - before.keys())]
    removed = [before[k] for k in sorted(before.keys() - after.keys())]
    if added:
        drafts.append(EventDraft(
            "sartiq.set_design.base_images_added", Severity.INFO,
            f"{label}: {plural(len(added), 'base image')} added ({len(after)} in all)",
            {"images": [_image_brief(i) for i in added], "count": len(added), "total": len(after)},
        ))
    for subject in sorted(_subjects(after) - _subjects(before)):
        shots = sorted(str(i.get("shot_type_id")) for i in after.values() if str(i.get("subject_id")) == subject)
        drafts.append(EventDraft(
            "sartiq.set_design.subject_added", Severity.INFO,
            f"{label}: base images for subject {subject} ({plural(len(shots), 'shot type')})",
            {"subject_id": subject, "shot_type_ids": shots, "count": len(shots)},
        ))
    if removed:
        drafts.append(EventDraft(
            "sartiq.set_design.base_images_removed", Severity.INFO,
            f"{label}: {plural(len(removed), 'base image')} removed ({len(after)} left)",
            {"images": [_image_brief(i) for i in removed], "count": len(removed), "total": len(after)},
        ))
    return drafts


# ---- upload tasks -----------------------------------------------------------------------


def _task_events(ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change], step: int) -> list[EventDraft]:
    """State, progress (by `step`-percent bands), skipped images and errors of one task.
    For `latest_upload`, a new task id is a `new_task` event and the new task is compared
    against a fresh start (nothing skipped, no error, 0 %), not against the old task."""
    prefix, label = f"sartiq.{ref.kind}", _label(ref, new)
    task_id = new.get("id")
    replaced = ref.kind == "latest_upload" and old.get("id") is not None and old.get("id") != task_id
    base: Snapshot = {"status": old.get("status")} if replaced else old
    drafts: list[EventDraft] = []
    if replaced:
        drafts.append(EventDraft(
            f"{prefix}.new_task", Severity.INFO, f"{label}: new upload task {task_id} ({new.get('status')})",
            {"previous_task_id": old.get("id"), "task_id": task_id, "status": new.get("status")},
        ))
    drafts.extend(_state_event(prefix, label, old, base, new, changes))
    drafts.extend(_progress_event(prefix, label, base, new, step, replaced))
    drafts.extend(_skipped_event(prefix, label, 0 if replaced else (count(old.get("images_skipped")) or 0), new))
    error = new.get("error_message")
    if error and (replaced or error != old.get("error_message")):
        drafts.append(EventDraft(f"{prefix}.error", Severity.CRITICAL, f"{label}: error: {short(str(error))}",
                                 {"error_message": error, "status": new.get("status"), "task_id": task_id}))
    return drafts


def _state_event(
    prefix: str, label: str, old: Snapshot, base: Snapshot, new: Snapshot, changes: list[Change]
) -> list[EventDraft]:
    """A new status, or `completed_at` newly set (against `base`: a replaced task's fresh start)."""
    was, now = old.get("status"), new.get("status")
    if was == now and not (new.get("completed_at") and not base.get("completed_at")):
        return []
    outcome = task_outcome(now)
    return [EventDraft(
        f"{prefix}.state_changed",
        Severity.CRITICAL if outcome == "failure" else Severity.INFO,
        f"{label}: {was} → {now}" if was != now else f"{label}: {now}, completed",
        {"from": was, "to": now, "terminal": is_task_terminal(new), "outcome": outcome, "task_id": new.get("id"),
         "completed_at": new.get("completed_at"), "error_message": new.get("error_message"),
         "changes": [c.as_dict() for c in changes]},
    )]


def _skipped_event(prefix: str, label: str, before: int, new: Snapshot) -> list[EventDraft]:
    skipped = count(new.get("images_skipped")) or 0
    if skipped <= before:
        return []
    return [EventDraft(
        f"{prefix}.images_skipped", Severity.WARNING,
        f"{label}: {plural(skipped - before, 'image')} skipped ({skipped} in all)",
        {"previous": before, "images_skipped": skipped, "added": skipped - before,
         "images_processed": new.get("images_processed"), "total_items": new.get("total_items"),
         "task_id": new.get("id")},
    )]


def _progress_event(
    prefix: str, label: str, old: Snapshot, new: Snapshot, step: int, replaced: bool
) -> list[EventDraft]:
    before = 0.0 if replaced else task_percent(old)
    after = task_percent(new)
    if before is None or after is None or progress_bucket(before, step) == progress_bucket(after, step):
        return []
    return [EventDraft(
        f"{prefix}.progress_changed", Severity.INFO, f"{label}: progress {_pct(before)} → {_pct(after)}",
        {"previous": round(before, 1), "progress": round(after, 1), "step": step,
         "processed_items": new.get("processed_items"), "total_items": new.get("total_items"),
         "status": new.get("status"), "task_id": new.get("id")},
    )]


# ---- wording ----------------------------------------------------------------------------


def _label(ref: ResourceRef, snapshot: Snapshot) -> str:
    """`Set design “Beach house”`, `Upload task “208f…”`, `Latest upload “sd/subject”`."""
    noun = NOUNS.get(ref.kind, ref.kind)
    title = snapshot.get("name") if ref.kind == "set_design" else None
    return f"{noun} “{title or ref.id}”"


def _pct(value: float) -> str:
    return f"{value:.0f} %"
