"""Deepomatic Engage stand-in: work orders with named tasks, in the seed's (004_*) shape.

API (under the provider prefix): `GET /v0.2/work-orders/{id}/?include_inputs=` with
`Authorization: Token <api_key>`. Without the trailing slash it redirects, as Django does.
`include_inputs` defaults to true, as in the docs; then every image input carries a freshly
signed URL and each task's state lists its `analyzed_inputs`.

Control (Python methods, mirrored as POST routes under `/_sim/deepomatic/`):
`add_work_order`, `add_many`, `analyze`, `correct`, `set_progress`, `review`, `conformity_error`,
`rename_task_ids` (an app upgrade: new ids, same names), `delete_work_order`.
"""

from __future__ import annotations

import base64
import random
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from simulator.core import SimProvider, json_response

__all__ = ["DEFAULT_TASKS", "DeepomaticSim", "SimTask", "SimWorkOrder"]

DEFAULT_TASKS: dict[str, str] = {
    "equipment_after_intervention": "Boolean",
    "equipment_after_intervention_degradations": "Number",
    "cabinet_closed": "Boolean",
}
"""Task name → task type, after the seed's example."""

INVALID_KEY = "No user found for such apiKey."
NOT_FOUND = "WorkOrder not found!"
"""The seed's own error wording (`{"detail": …}`)."""
STORAGE = "https://storage.googleapis.com/dp-resources-sim/inputs"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _uid() -> str:
    return str(uuid.uuid4())


@dataclass
class SimTask:
    name: str
    type: str
    group_name: str
    id: str = field(default_factory=_uid)
    group_id: str = field(default_factory=_uid)
    state_id: str = field(default_factory=_uid)
    input_id: str = field(default_factory=_uid)
    analyzed_value: Any = None
    analyzed_date: str | None = None
    corrected_value: Any = None
    corrected_date: str | None = None
    message: str | None = None
    is_conformity_validated: bool = False
    conformity_messages: list[dict[str, str]] = field(default_factory=list)
    """Conformity messages of this task's photo input (one image input per task here)."""


@dataclass
class SimWorkOrder:
    id: str
    name: str
    tasks: list[SimTask]
    site_id: str = field(default_factory=_uid)
    app_version_id: str = field(default_factory=_uid)
    progress_score: float = 0
    review_date: str | None = None
    create_date: str = field(default_factory=_now)
    update_date: str = field(default_factory=_now)
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    types: list[dict[str, str]] = field(default_factory=list)
    context_input_id: str = field(default_factory=_uid)
    field_engineer_name: str = "Richard Roe"
    field_engineer_email: str = "richard.roe@example.com"

    def task(self, name: str) -> SimTask:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"work order {self.id} has no task {name!r}")

    def touch(self) -> None:
        self.update_date = _now()


class DeepomaticSim(SimProvider):
    name = "deepomatic"

    def __init__(self, api_key: str = "sim-api-key") -> None:
        self.api_key = api_key
        self.work_orders: dict[str, SimWorkOrder] = {}

    # ---- Python control API ------------------------------------------------------------

    def add_work_order(
        self,
        wo_id: str | None = None,
        *,
        name: str = "work-order",
        tasks: Mapping[str, str] | None = None,
        group_name: str = "equipment-after-intervention",
        progress_score: float = 0,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """A new work order with `tasks` (name → type: Boolean, Number, Text); returns its id."""
        wo_id = wo_id or _uid()
        self.work_orders[wo_id] = SimWorkOrder(
            id=wo_id,
            name=name,
            tasks=[SimTask(n, t, group_name) for n, t in (tasks or DEFAULT_TASKS).items()],
            progress_score=progress_score,
            tags=list(tags if tags is not None else ["group-1"]),
            metadata=dict(metadata if metadata is not None else {"region": "North"}),
            types=[{"id": _uid(), "name": "maintenance"}],
        )
        return wo_id

    def add_many(self, n: int, /) -> list[str]:
        """`n` fresh work orders with the default tasks (the simulator registry's seeding hook)."""
        start = len(self.work_orders)
        return [self.add_work_order(name=f"work-order-{start + i + 1}") for i in range(n)]

    def delete_work_order(self, wo_id: str) -> None:
        del self.work_orders[wo_id]

    def analyze(self, wo_id: str, task_name: str, value: Any, message: str | None = None) -> None:
        wo = self.work_orders[wo_id]
        task = wo.task(task_name)
        task.analyzed_value = value
        task.analyzed_date = _now()
        task.message = message
        wo.touch()

    def correct(self, wo_id: str, task_name: str, value: Any) -> None:
        wo = self.work_orders[wo_id]
        task = wo.task(task_name)
        task.corrected_value = value
        task.corrected_date = _now()
        wo.touch()

    def set_progress(self, wo_id: str, score: float) -> None:
        if not 0 <= score <= 100:
            raise ValueError(f"progress_score must be within 0..100, not {score}")
        wo = self.work_orders[wo_id]
        wo.progress_score = score
        wo.touch()

    def review(self, wo_id: str) -> None:
        wo = self.work_orders[wo_id]
        wo.review_date = _now()
        wo.touch()

    def conformity_error(
        self, wo_id: str, task_name: str, message: str, *, code: str = "photo_quality",
        check: str = "Photo quality", level: str = "error",
    ) -> None:
        """A failed data conformity check on the photo input that `task_name` analyzed."""
        wo = self.work_orders[wo_id]
        task = wo.task(task_name)
        task.conformity_messages.append({"code": code, "name": check, "message": message, "level": level})
        task.is_conformity_validated = False
        wo.touch()

    def rename_task_ids(self, wo_id: str) -> None:
        """What an application upgrade does: every task, group, state and version id changes,
        names do not. A provider that keys tasks by name sees nothing."""
        wo = self.work_orders[wo_id]
        wo.app_version_id = _uid()
        group_ids: dict[str, str] = {}
        for task in wo.tasks:
            task.id = _uid()
            task.state_id = _uid()
            task.group_id = group_ids.setdefault(task.group_name, _uid())
        for t in wo.types:
            t["id"] = _uid()

    def step(self, rng: random.Random) -> list[str]:
        """One plausible move per open work order: a field worker's photo gets analyzed and
        the score follows, now and then a check fails; complete ones get corrected or reviewed."""
        changed: list[str] = []
        for wo in self.work_orders.values():
            if wo.review_date:
                continue
            pending = [t for t in wo.tasks if t.analyzed_value is None]
            if pending:
                task = rng.choice(pending)
                value = _random_value(task.type, rng)
                self.analyze(wo.id, task.name, value, message=None if value else "Check the photo")
                if rng.random() < 0.05:
                    self.conformity_error(wo.id, task.name, "The photo is blurry")
                done = len(wo.tasks) - len(pending) + 1
                self.set_progress(wo.id, round(100 * done / len(wo.tasks)))
                changed.append(f"deepomatic {wo.id}: {task.name} = {value!r} ({wo.progress_score}%)")
            elif rng.random() < 0.3:
                if rng.random() < 0.3:
                    task = rng.choice(wo.tasks)
                    self.correct(wo.id, task.name, _random_value(task.type, rng))
                    changed.append(f"deepomatic {wo.id}: {task.name} corrected")
                self.review(wo.id)
                changed.append(f"deepomatic {wo.id}: reviewed")
        return changed

    # ---- payloads ------------------------------------------------------------------------

    def payload(self, wo_id: str, *, include_inputs: bool = True) -> dict[str, Any]:
        wo = self.work_orders[wo_id]
        body: dict[str, Any] = {
            "id": wo.id,
            "name": wo.name,
            "site_id": wo.site_id,
            "progress_score": wo.progress_score,
            "review_date": wo.review_date,
            "create_date": wo.create_date,
            "update_date": wo.update_date,
            "tags": list(wo.tags),
            "app_version_id": wo.app_version_id,
            "parameters": None,
            "metadata": dict(wo.metadata),
            "types": [dict(t) for t in wo.types],
        }
        if include_inputs:
            body["inputs"] = [
                {
                    "id": wo.context_input_id,
                    "name": "context",
                    "data": {"type": "text", "value": wo.name},
                    "metadata": {},
                    "conformity_messages": [],
                },
                *(
                    {
                        "id": t.input_id,
                        "name": f"{t.name}_photo",
                        "data": {"type": "image", "value": _signed_url(t.input_id)},
                        "metadata": {},
                        "conformity_messages": [dict(m) for m in t.conformity_messages],
                    }
                    for t in wo.tasks
                ),
            ]
        body |= {
            "field_engineer_email": wo.field_engineer_email,
            "field_engineer_name": wo.field_engineer_name,
            "user_group_ids": [],
            "tasks": [_task_payload(t, include_inputs) for t in wo.tasks],
            "task_groups": _groups(wo.tasks),
        }
        return body

    # ---- HTTP ----------------------------------------------------------------------------

    def add_api_routes(self, app: web.Application) -> None:
        app.router.add_get("/v0.2/work-orders/{wo_id}/", self._get_work_order)
        app.router.add_get("/v0.2/work-orders/{wo_id}", self._append_slash)

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_post("/work-orders", self._ctl_add)
        app.router.add_delete("/work-orders/{wo_id}", self._ctl_delete)
        app.router.add_post("/work-orders/{wo_id}/{action}", self._ctl_action)

    def _authorized(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization")
        if not header:
            return json_response({"detail": "Authentication credentials not provided."}, status=401)
        scheme, _, key = header.partition(" ")
        if scheme != "Token" or not secrets.compare_digest(key.strip(), self.api_key):
            return json_response({"detail": INVALID_KEY}, status=401)
        return None

    async def _get_work_order(self, request: web.Request) -> web.Response:
        denied = self._authorized(request)
        if denied is not None:
            return denied
        wo_id = request.match_info["wo_id"]
        if wo_id not in self.work_orders:
            return json_response({"detail": NOT_FOUND}, status=404)
        include = request.query.get("include_inputs", "true").lower() not in ("false", "0")
        return json_response(self.payload(wo_id, include_inputs=include))

    async def _append_slash(self, request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(request.rel_url.with_path(request.path + "/").human_repr())

    async def _ctl_add(self, request: web.Request) -> web.Response:
        data = await _json_body(request)
        wo_id = self.add_work_order(
            data.get("id"),
            name=str(data.get("name", "work-order")),
            tasks=data.get("tasks"),
            progress_score=float(data.get("progress_score", 0)),
            tags=data.get("tags"),
        )
        return json_response(self.payload(wo_id, include_inputs=False), status=201)

    async def _ctl_delete(self, request: web.Request) -> web.Response:
        wo_id = request.match_info["wo_id"]
        if wo_id not in self.work_orders:
            return json_response({"detail": "Not found."}, status=404)
        self.delete_work_order(wo_id)
        return json_response({"ok": True})

    async def _ctl_action(self, request: web.Request) -> web.Response:
        """POST /_sim/deepomatic/work-orders/{id}/{action}: analyze {task, value, message},
        correct {task, value}, progress {score}, review, conformity-error {task, message},
        rename-task-ids."""
        wo_id, action = request.match_info["wo_id"], request.match_info["action"]
        if wo_id not in self.work_orders:
            return json_response({"detail": "Not found."}, status=404)
        data = await _json_body(request)
        try:
            if action == "analyze":
                self.analyze(wo_id, data["task"], data.get("value"), data.get("message"))
            elif action == "correct":
                self.correct(wo_id, data["task"], data.get("value"))
            elif action == "progress":
                self.set_progress(wo_id, float(data["score"]))
            elif action == "review":
                self.review(wo_id)
            elif action == "conformity-error":
                self.conformity_error(wo_id, data["task"], str(data["message"]))
            elif action == "rename-task-ids":
                self.rename_task_ids(wo_id)
            else:
                return json_response({"detail": f"unknown action {action!r}"}, status=404)
        except (KeyError, TypeError, ValueError) as exc:
            return json_response({"detail": f"bad request: {exc}"}, status=400)
        return json_response(self.payload(wo_id, include_inputs=False))


def _task_payload(task: SimTask, include_inputs: bool) -> dict[str, Any]:
    state: dict[str, Any] = {
        "id": task.state_id,
        "analyzed_value": task.analyzed_value,
        "analyzed_date": task.analyzed_date,
        "corrected_value": task.corrected_value,
        "corrected_date": task.corrected_date,
        "message": task.message,
        "color": "#e45d26" if task.message else "#26e45d",
        "is_conformity_validated": task.is_conformity_validated,
    }
    if include_inputs:
        state["analyzed_inputs"] = [{"input_id": task.input_id, "regions": []}]
    return {
        "id": task.id,
        "name": task.name,
        "label": task.name.replace("_", " ").capitalize(),
        "type": task.type,
        "group_name": task.group_name,
        "group_id": task.group_id,
        "state": state,
    }


def _groups(tasks: list[SimTask]) -> list[dict[str, Any]]:
    groups: dict[str, str] = {}
    for task in tasks:
        groups.setdefault(task.group_name, task.group_id)
    return [
        {"id": gid, "name": name, "display_name": name.replace("-", " ").capitalize(), "order": i}
        for i, (name, gid) in enumerate(groups.items())
    ]


def _signed_url(input_id: str) -> str:
    """A GCS-style signed URL, different on every call, as the real API's are."""
    signature = quote(base64.b64encode(secrets.token_bytes(32)).decode(), safe="")
    expires = int(time.time()) + 3600
    return (
        f"{STORAGE}/{input_id}.jpeg?Expires={expires}"
        f"&GoogleAccessId=sim%40deepomatic-sim.iam.gserviceaccount.com&Signature={signature}"
    )


def _random_value(task_type: str, rng: random.Random) -> Any:
    if task_type == "Boolean":
        return rng.random() < 0.8
    if task_type == "Number":
        return float(rng.randint(0, 3))
    return rng.choice(["ok", "damaged", "missing"])


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
