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

import base64
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import orjson
from pydantic import Field, SecretStr

from model.errors import MalformedPayload, ProviderError, Unauthorized, Unavailable
from model.events import Change, EventDraft, Severity
from model.resources import ResourceInfo, ResourceRef, ScanItem, Snapshot
from model.values import Duration
from providers.base import NonBlank, Provider, ProviderSettings, ScanFilter, error_for_reply
from transport import http

__all__ = [
    "FAILURE_STATUSES",
    "SUCCESS_STATUSES",
    "SartiqProvider",
    "SartiqSettings",
    "is_task_terminal",
    "progress_bucket",
    "stable_url",
    "task_outcome",
    "task_percent",
]

TOKEN_PATH = "/api/v1/login/access-token"
SET_DESIGNS = "/api/v1/set-designs"
TASK_KINDS = frozenset({"upload_task", "latest_upload"})
SUCCESS_STATUSES = frozenset({"completed", "complete", "success", "succeeded", "done", "finished"})
FAILURE_STATUSES = frozenset({"failed", "failure", "error", "errored", "cancelled", "canceled"})
IMAGE_LISTS = ("base_images", "reference_images", "subject_portraits")
SIGNING_PARAMS = frozenset(
    (
        "x-amz-signature x-amz-credential x-amz-expires x-amz-security-token x-amz-date"
        " x-goog-signature x-goog-credential x-goog-expires signature expires key-pair-id policy sig se st"
    ).split()
)
"""Query parameters of presigned URLs (S3, GCS, CloudFront, Azure SAS): their presence
makes the query volatile."""
MAX_PAGES = 100_000  # a guard against a list that never ends
NOUNS = {"upload_task": "Upload task", "latest_upload": "Latest upload", "set_design": "Set design"}

Outcome = Literal["success", "failure"]


class SartiqSettings(ProviderSettings):
    """The seed names no production host, so `base_url` has no default."""

    username: str = Field(min_length=1)
    password: SecretStr
    progress_step: int = Field(
        default=25, ge=1, le=100, description="progress events every this many percent"
    )
    token_lifetime: Duration = Field(default=3600.0, description="when the token answer says nothing")
    organization_id: str | None = Field(
        default=None, description="sent as ?organization_id= on every request"
    )
    page_size: int = Field(default=100, ge=1, le=1000, description="`limit` of a set-design scan page")


# ---- pure helpers: status, progress, URLs ---------------------------------------------


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


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def task_percent(snapshot: Snapshot) -> float | None:
    """How far a task is, in percent. `processed_items / total_items` when there are items
    (self-describing), else `progress` (an integer the seed does not define further,
    read as a percentage), clamped to 0–100."""
    processed, total = _count(snapshot.get("processed_items")), _count(snapshot.get("total_items"))
    if processed is not None and total:
        return max(0.0, min(100.0, processed * 100.0 / total))
    progress = snapshot.get("progress")
    if isinstance(progress, int | float) and not isinstance(progress, bool):
        return max(0.0, min(100.0, float(progress)))
    return None


def progress_bucket(percent: float, step: int) -> int:
    """Which `step`-wide band a percentage is in: an event fires when the band changes."""
    return int(percent // step)


def stable_url(url: str) -> str:
    """`url` without its query when the query is a presigned one (it changes per request)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    names = {pair.split("=", 1)[0].strip().casefold() for pair in parts.query.split("&")}
    if names & SIGNING_PARAMS:
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return url


def _stable(value: Any) -> Any:
    """`value` with every presigned URL in it reduced to its stable part."""
    if isinstance(value, str):
        return stable_url(value) if value.startswith(("http://", "https://")) else value
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _jwt_lifetime(token: str) -> float | None:
    """Seconds until a JWT's `exp`, read without verifying (only to schedule a refresh)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return None
    return exp - time.time()


def _split_latest_id(rid: str) -> tuple[str, str]:
    set_design_id, sep, subject_id = rid.partition("/")
    if not (sep and set_design_id and subject_id) or "/" in subject_id:
        raise ProviderError(f"sartiq: latest_upload id must be {{set_design_id}}/{{subject_id}}, got {rid!r}")
    return set_design_id, subject_id


# ---- the provider -----------------------------------------------------------------------


class SartiqScan(ScanFilter):
    organization_id: NonBlank | None = None
    owner_id: NonBlank | None = None


class SartiqProvider(Provider):
    name = "sartiq"
    settings_model = SartiqSettings
    default_kind = "upload_task"
    kinds: ClassVar[tuple[str, ...]] = ("upload_task", "set_design", "latest_upload", "scan")
    scan_filter = SartiqScan
    settings: SartiqSettings

    # ---- auth -------------------------------------------------------------------------

    async def new_token(self) -> tuple[str, float]:
        password = self.settings.password.get_secret_value()
        form = {"grant_type": "password", "username": self.settings.username, "password": password}
        try:
            reply = await http.send(self.session, "POST", f"{self.base_url}{TOKEN_PATH}", data=form,
                               headers={"Accept": "application/json"}, timeout=self.settings.timeout)
        except http.NoReply as exc:
            raise Unavailable(f"sartiq: login endpoint unreachable ({exc.reason})") from exc
        if reply.outcome is not http.Outcome.OK:
            raise self._login_error(reply)
        data = self.parse(reply.body)
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise Unauthorized("sartiq: login answered without an access_token")
        expires_in = data.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            return token, float(expires_in)
        return token, _jwt_lifetime(token) or self.settings.token_lifetime

    def _login_error(self, reply: http.Reply) -> ProviderError:
        """A refused login names the user and Sartiq's reason, never the password (a 422
        echoes the form's input, so only a string `detail` is quoted, and scrubbed)."""
        reason = self.error_reason(reply.body).replace(self.settings.password.get_secret_value(), "***")
        message = f"sartiq: login as {self.settings.username!r} refused (HTTP {reply.status})" + (
            f": {reason}" if reason else ""
        )
        if reply.status in (400, 422):  # a refused password grant, or FastAPI's form validation
            return Unauthorized(message, status=reply.status)
        return error_for_reply(reply, message)

    # ---- fetch and scan ------------------------------------------------------------------

    def _params(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        params = dict(extra or {})
        if self.settings.organization_id:
            params.setdefault("organization_id", self.settings.organization_id)
        return params

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

    async def fetch(self, ref: ResourceRef) -> Any:
        url, params = self.resource_url(ref)
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
            count = _count(body.get("count"))
            if not rows or (len(rows) < limit and not (count is not None and skip < count)):
                return

    # ---- normalize ----------------------------------------------------------------------

    def normalize(self, ref: ResourceRef, payload: Any) -> Snapshot:
        if not isinstance(payload, dict):
            raise MalformedPayload(f"sartiq: {ref.key}: payload is not an object")
        if ref.kind in TASK_KINDS:
            if not isinstance(payload.get("status"), str):
                raise MalformedPayload(f"sartiq: {ref.key}: upload task has no status")
            return {k: _stable(v) for k, v in payload.items()}
        if ref.kind == "set_design":
            return _normalize_set_design(ref, payload)
        raise MalformedPayload(f"sartiq: {ref.key}: unknown kind {ref.kind!r}")

    # ---- describe -----------------------------------------------------------------------

    def describe(self, ref: ResourceRef, snapshot: Snapshot) -> ResourceInfo:
        url, params = self.resource_url(ref)
        if params:
            url += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
        if ref.kind == "set_design":
            status = snapshot.get("status")
            return ResourceInfo(
                title=str(snapshot.get("name") or ref.id),
                url=url,
                state=status if isinstance(status, str) else None,
                terminal=False,
                project=ref.id,
            )
        project = snapshot.get("set_design_id") or (
            ref.id.partition("/")[0] if ref.kind == "latest_upload" else None
        )
        return ResourceInfo(
            title=ref.id,
            url=url,
            state=snapshot.get("status"),
            terminal=is_task_terminal(snapshot),
            project=str(project) if project else None,
        )

    def severity_of_state(self, state: str | None) -> Severity:
        return Severity.CRITICAL if task_outcome(state) == "failure" else Severity.INFO

    def label(self, ref: ResourceRef, snapshot: Snapshot) -> str:
        return _label(ref, snapshot)

    # ---- classify -----------------------------------------------------------------------

    def classify(
        self, ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]
    ) -> list[EventDraft]:
        if ref.kind in TASK_KINDS:
            return _task_events(ref, old, new, changes, self.settings.progress_step)
        if ref.kind == "set_design":
            return _set_design_events(ref, old, new, changes)
        return []


# ---- set designs ------------------------------------------------------------------------


def _normalize_set_design(ref: ResourceRef, payload: dict[str, Any]) -> Snapshot:
    if not isinstance(payload.get("id"), str) or not payload["id"]:
        raise MalformedPayload(f"sartiq: {ref.key}: set design has no id")
    snap: Snapshot = {k: _stable(v) for k, v in payload.items() if k not in IMAGE_LISTS}
    for key in IMAGE_LISTS:
        value = payload.get(key)
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise MalformedPayload(f"sartiq: {ref.key}: {key} is not a list of objects")
        key_of = _base_image_key if key == "base_images" else _image_id
        snap[key] = _keyed([_stable(v) for v in value], key_of)
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
    return {
        "id": image.get("id"),
        "subject_id": image.get("subject_id"),
        "shot_type_id": image.get("shot_type_id"),
    }


def _set_design_events(
    ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change]
) -> list[EventDraft]:
    """Base images added or removed, a subject newly covered (the observable side of a
    fulfilled completion request), and a state change should Sartiq add a `status`."""
    label = _label(ref, new)
    drafts: list[EventDraft] = []
    was, now = old.get("status"), new.get("status")
    if (was is not None or now is not None) and was != now:
        drafts.append(
            EventDraft(
                type="sartiq.set_design.state_changed",
                severity=Severity.INFO,
                summary=f"{label}: {was} → {now}",
                data={"from": was, "to": now, "terminal": False, "changes": [c.as_dict() for c in changes]},
            )
        )
    before, after = _images(old), _images(new)
    added = [after[k] for k in sorted(after.keys() - before.keys())]
    removed = [before[k] for k in sorted(before.keys() - after.keys())]
    if added:
        drafts.append(
            EventDraft(
                type="sartiq.set_design.base_images_added",
                severity=Severity.INFO,
                summary=f"{label}: {_plural(len(added), 'base image')} added ({len(after)} in all)",
                data={"images": [_image_brief(i) for i in added], "count": len(added), "total": len(after)},
            )
        )
    for subject in sorted(_subjects(after) - _subjects(before)):
        shots = sorted(
            str(i.get("shot_type_id")) for i in after.values() if str(i.get("subject_id")) == subject
        )
        drafts.append(
            EventDraft(
                type="sartiq.set_design.subject_added",
                severity=Severity.INFO,
                summary=f"{label}: base images for subject {subject} ({_plural(len(shots), 'shot type')})",
                data={"subject_id": subject, "shot_type_ids": shots, "count": len(shots)},
            )
        )
    if removed:
        drafts.append(
            EventDraft(
                type="sartiq.set_design.base_images_removed",
                severity=Severity.INFO,
                summary=f"{label}: {_plural(len(removed), 'base image')} removed ({len(after)} left)",
                data={
                    "images": [_image_brief(i) for i in removed],
                    "count": len(removed),
                    "total": len(after),
                },
            )
        )
    return drafts


# ---- upload tasks -----------------------------------------------------------------------


def _task_events(
    ref: ResourceRef, old: Snapshot, new: Snapshot, changes: list[Change], step: int
) -> list[EventDraft]:
    """State, progress (by `step`-percent bands), skipped images and errors of one task.
    For `latest_upload`, a new task id is a `new_task` event and the new task is compared
    against a fresh start (nothing skipped, no error, 0 %), not against the old task."""
    prefix, label = f"sartiq.{ref.kind}", _label(ref, new)
    task_id = new.get("id")
    replaced = ref.kind == "latest_upload" and old.get("id") is not None and old.get("id") != task_id
    base: Snapshot = {"status": old.get("status")} if replaced else old
    drafts: list[EventDraft] = []
    if replaced:
        drafts.append(
            EventDraft(
                type=f"{prefix}.new_task",
                severity=Severity.INFO,
                summary=f"{label}: new upload task {task_id} ({new.get('status')})",
                data={"previous_task_id": old.get("id"), "task_id": task_id, "status": new.get("status")},
            )
        )
    was, now = old.get("status"), new.get("status")
    newly_completed = bool(new.get("completed_at")) and not base.get("completed_at")
    if was != now or newly_completed:
        outcome = task_outcome(now)
        drafts.append(
            EventDraft(
                type=f"{prefix}.state_changed",
                severity=Severity.CRITICAL if outcome == "failure" else Severity.INFO,
                summary=f"{label}: {was} → {now}" if was != now else f"{label}: {now}, completed",
                data={
                    "from": was,
                    "to": now,
                    "terminal": is_task_terminal(new),
                    "outcome": outcome,
                    "task_id": task_id,
                    "completed_at": new.get("completed_at"),
                    "error_message": new.get("error_message"),
                    "changes": [c.as_dict() for c in changes],
                },
            )
        )
    drafts.extend(_progress_event(prefix, label, base, new, step, replaced))
    before_skipped = 0 if replaced else (_count(old.get("images_skipped")) or 0)
    skipped = _count(new.get("images_skipped")) or 0
    if skipped > before_skipped:
        drafts.append(
            EventDraft(
                type=f"{prefix}.images_skipped",
                severity=Severity.WARNING,
                summary=f"{label}: {_plural(skipped - before_skipped, 'image')} skipped ({skipped} in all)",
                data={
                    "previous": before_skipped,
                    "images_skipped": skipped,
                    "added": skipped - before_skipped,
                    "images_processed": new.get("images_processed"),
                    "total_items": new.get("total_items"),
                    "task_id": task_id,
                },
            )
        )
    error = new.get("error_message")
    if error and (replaced or error != old.get("error_message")):
        drafts.append(
            EventDraft(
                type=f"{prefix}.error",
                severity=Severity.CRITICAL,
                summary=f"{label}: error: {_short(str(error))}",
                data={"error_message": error, "status": now, "task_id": task_id},
            )
        )
    return drafts


def _progress_event(
    prefix: str, label: str, old: Snapshot, new: Snapshot, step: int, replaced: bool
) -> list[EventDraft]:
    before = 0.0 if replaced else task_percent(old)
    after = task_percent(new)
    if before is None or after is None or progress_bucket(before, step) == progress_bucket(after, step):
        return []
    return [
        EventDraft(
            type=f"{prefix}.progress_changed",
            severity=Severity.INFO,
            summary=f"{label}: progress {_pct(before)} → {_pct(after)}",
            data={
                "previous": round(before, 1),
                "progress": round(after, 1),
                "step": step,
                "processed_items": new.get("processed_items"),
                "total_items": new.get("total_items"),
                "status": new.get("status"),
                "task_id": new.get("id"),
            },
        )
    ]


# ---- wording ----------------------------------------------------------------------------


def _label(ref: ResourceRef, snapshot: Snapshot) -> str:
    """`Set design “Beach house”`, `Upload task “208f…”`, `Latest upload “sd/subject”`."""
    noun = NOUNS.get(ref.kind, ref.kind)
    title = snapshot.get("name") if ref.kind == "set_design" else None
    return f"{noun} “{title or ref.id}”"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _pct(value: float) -> str:
    return f"{value:.0f} %"


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
