"""Deepomatic Engage stand-in: work orders with named tasks, in the seed's (004_*) shape.

API (under the provider prefix): `GET /v0.2/work-orders/{id}/?include_inputs=` with
`Authorization: Token <api_key>`. Without the trailing slash it redirects, as Django does.
`include_inputs` defaults to true, as in the docs; then every image input carries a freshly
signed URL and each task's state lists its `analyzed_inputs`.

Control (Python methods, mirrored as POST routes under `/_sim/deepomatic/`):
`add_work_order`, `add_many`, `analyze`, `correct`, `set_progress`, `review`, `conformity_error`,
`rename_task_ids` (an app upgrade: new ids, same names), `delete_work_order`.

The records and the payload they answer with are simulator/deepomatic_records.py.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from simulator.core import SimProvider, json_response
from simulator.deepomatic_records import SimTask, SimWorkOrder, new_id, now_text, work_order_payload

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


_SEEDED = uuid.UUID("5a571e00-0000-4000-8000-000000000004")


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
        wo_id = wo_id or new_id()
        self.work_orders[wo_id] = SimWorkOrder(
            id=wo_id,
            name=name,
            tasks=[SimTask(n, t, group_name) for n, t in (tasks or DEFAULT_TASKS).items()],
            progress_score=progress_score,
            tags=list(tags if tags is not None else ["group-1"]),
            metadata=dict(metadata if metadata is not None else {"region": "North"}),
            types=[{"id": new_id(), "name": "maintenance"}],
        )
        return wo_id

    def add_many(self, n: int, /) -> list[str]:
        """`n` fresh work orders with the default tasks (the simulator registry's seeding hook)."""
        start = len(self.work_orders)
        names = [f"work-order-{start + i + 1}" for i in range(n)]  # the same ids in every run (`--seed`)
        return [self.add_work_order(str(uuid.uuid5(_SEEDED, name)), name=name) for name in names]

    def delete_work_order(self, wo_id: str) -> None:
        del self.work_orders[wo_id]

    def analyze(self, wo_id: str, task_name: str, value: Any, message: str | None = None) -> None:
        wo = self.work_orders[wo_id]
        task = wo.task(task_name)
        task.analyzed_value = value
        task.analyzed_date = now_text()
        task.message = message
        wo.touch()

    def correct(self, wo_id: str, task_name: str, value: Any) -> None:
        wo = self.work_orders[wo_id]
        task = wo.task(task_name)
        task.corrected_value = value
        task.corrected_date = now_text()
        wo.touch()

    def set_progress(self, wo_id: str, score: float) -> None:
        if not 0 <= score <= 100:
            raise ValueError(f"progress_score must be within 0..100, not {score}")
        wo = self.work_orders[wo_id]
        wo.progress_score = score
        wo.touch()

    def review(self, wo_id: str) -> None:
        wo = self.work_orders[wo_id]
        wo.review_date = now_text()
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
        wo.app_version_id = new_id()
        group_ids: dict[str, str] = {}
        for task in wo.tasks:
            task.id = new_id()
            task.state_id = new_id()
            task.group_id = group_ids.setdefault(task.group_name, new_id())
        for t in wo.types:
            t["id"] = new_id()

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

    def payload(self, wo_id: str, *, include_inputs: bool = True) -> dict[str, Any]:
        return work_order_payload(self.work_orders[wo_id], include_inputs=include_inputs)

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
