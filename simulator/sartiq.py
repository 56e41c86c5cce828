"""Sartiq's stand-in: set designs and base-image upload tasks in the seed's shapes (003_*).

API (under `/sartiq`):
- `POST /api/v1/login/access-token` (form: `username`, `password`, optional
  `grant_type=password`) → `{access_token, token_type: "bearer"}`; a wrong pair is a 400
  `{"detail": "Incorrect email or password"}`, a missing field a 422, as FastAPI answers;
- `GET /api/v1/set-designs/?skip=&limit=` → `{data, count}`;
- `GET /api/v1/set-designs/{id}`;
- `GET /api/v1/set-designs/upload-tasks/{task_id}`;
- `GET /api/v1/set-designs/{set_design_id}/base-images/upload-task?subject_id=` (the
  most recent task of that set design and subject).
Every API route needs `Authorization: Bearer <token>` (else 401 `{"detail": "Could not
validate credentials"}`); unknown ids are 404 with a `detail`. Image URLs are presigned
(a fresh `X-Amz-Signature` on every request), as a storage bucket would hand them out.

Control: the Python methods below, mirrored under `/_sim/sartiq/`:
`GET /state`, `POST /set-designs` `{name?, set_design_id?, base_images?: [{subject_id, shot_type_id}]}`,
`POST /set-designs/{id}/base-images` `{subject_id, shot_type_id}`, `DELETE /set-designs/{id}`,
`POST /tasks` `{set_design_id, subject_id, total_items?}`, `POST /tasks/{id}/advance`
`{processed?, skipped?}`, `POST /tasks/{id}/finish` `{status?, error_message?}`,
`POST /tasks/{id}/status` `{status, completed?}`, `DELETE /tasks/{id}`, `POST /tokens/expire`.
"""

from __future__ import annotations

import copy
import random
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from simulator.core import SimProvider, json_response, read_json_object

__all__ = ["SHOT_TYPES", "SartiqSim"]

_NS = uuid.UUID("5a571e00-0000-4000-8000-000000000003")
SHOT_TYPES: dict[str, str] = {
    name: str(uuid.uuid5(_NS, f"shot-type/{name}"))
    for name in ("front_full_body", "back_full_body", "side_full_body", "close_up")
}
"""Shot type name → id. A ZIP's images are named after shot types (`front_full_body.jpg`)."""

PENDING, PROCESSING, COMPLETED, FAILED = "PENDING", "PROCESSING", "COMPLETED", "FAILED"
CLOSED = frozenset(
    {
        "completed",
        "complete",
        "success",
        "succeeded",
        "done",
        "finished",
        "failed",
        "failure",
        "error",
        "errored",
        "cancelled",
        "canceled",
    }
)
BAD_CREDENTIALS = "Incorrect email or password"
BAD_TOKEN = "Could not validate credentials"
ERRORS = ("ZIP archive is corrupted", "No image matched a known shot type", "Storage quota exceeded")
CDN = "https://cdn.sartiq.sim"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SartiqSim(SimProvider):
    name = "sartiq"

    def __init__(self, username: str = "sim@example.com", password: str = "sim-password") -> None:
        self.username = username
        self.password = password
        self.owner_id = str(uuid.uuid5(_NS, f"user/{username}"))
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.set_designs: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self._counter = 0

    def _new_id(self, what: str) -> str:
        self._counter += 1
        return str(uuid.uuid5(_NS, f"{what}/{self._counter}"))

    # ---- Python API: set designs ---------------------------------------------------------

    def add_set_design(
        self,
        name: str | None = None,
        *,
        set_design_id: str | None = None,
        base_images: Iterable[tuple[str, str]] = (),
        description: str | None = None,
        organization_id: str | None = None,
    ) -> str:
        """A new set design with base images for the given (subject_id, shot_type_id)
        pairs. Returns its id."""
        sd_id = set_design_id or self._new_id("set-design")
        if sd_id in self.set_designs:
            raise ValueError(f"set design {sd_id} exists")
        stamp = _now()
        self.set_designs[sd_id] = {
            "id": sd_id,
            "created_at": stamp,
            "updated_at": stamp,
            "name": name or f"Set design {len(self.set_designs) + 1}",
            "description": description,
            "owner_id": self.owner_id,
            "organization_id": organization_id,
            "background_preset_id": None,
            "base_images": [],
            "reference_images": [],
            "subject_portraits": [],
        }
        for subject_id, shot_type_id in base_images:
            self.add_base_image(sd_id, subject_id, shot_type_id)
        return sd_id

    def add_base_image(self, set_design_id: str, subject_id: str, shot_type_id: str) -> str:
        """Adds (or replaces, under a new id) the base image of a subject and shot type."""
        design = self.set_designs[set_design_id]
        stamp = _now()
        image_id = self._new_id("base-image")
        design["base_images"] = [
            i
            for i in design["base_images"]
            if (i["subject_id"], i["shot_type_id"]) != (subject_id, shot_type_id)
        ]
        design["base_images"].append(
            {
                "id": image_id,
                "created_at": stamp,
                "updated_at": stamp,
                "subject_id": subject_id,
                "shot_type_id": shot_type_id,
                "image_url": None,
                "image_media": {
                    "id": self._new_id("media"),
                    "created_at": stamp,
                    "url": f"/media/{image_id}.jpg",
                    "content_hash": uuid.uuid5(_NS, f"content/{image_id}").hex,
                    "extension": "jpg",
                    "file_size": 1_048_576,
                    "width": 2048,
                    "height": 3072,
                    "orientation": "portrait",
                    "aspect_ratio": 0.667,
                    "resource_type": "image",
                    "protected": False,
                    "alt_text": None,
                    "caption": None,
                    "color_profile": None,
                    "dominant_color": None,
                    "duration": None,
                },
            }
        )
        design["updated_at"] = stamp
        return image_id

    def remove_base_image(self, set_design_id: str, subject_id: str, shot_type_id: str) -> None:
        design = self.set_designs[set_design_id]
        design["base_images"] = [
            i
            for i in design["base_images"]
            if (i["subject_id"], i["shot_type_id"]) != (subject_id, shot_type_id)
        ]
        design["updated_at"] = _now()

    def remove_set_design(self, set_design_id: str) -> None:
        del self.set_designs[set_design_id]

    # ---- Python API: upload tasks --------------------------------------------------------

    def add_task(
        self, set_design_id: str, subject_id: str, total_items: int = 4, *, task_id: str | None = None
    ) -> str:
        """A PENDING upload task (what `POST …/base-images/upload` returns). Returns its id."""
        if set_design_id not in self.set_designs:
            raise KeyError(f"unknown set design {set_design_id}")
        tid = task_id or self._new_id("upload-task")
        if tid in self.tasks:
            raise ValueError(f"task {tid} exists")
        self.tasks[tid] = {
            "id": tid,
            "owner_id": self.owner_id,
            "set_design_id": set_design_id,
            "subject_id": subject_id,
            "status": PENDING,
            "progress": 0,
            "total_items": max(0, total_items),
            "processed_items": 0,
            "images_processed": 0,
            "images_skipped": 0,
            "error_message": None,
            "created_at": _now(),
            "started_at": None,
            "completed_at": None,
            "result_data": None,
        }
        return tid

    def advance_task(self, task_id: str, processed: int = 1, skipped: int = 0) -> dict[str, Any]:
        """`processed` more items handled, `skipped` of them skipped (counts add up, capped
        at `total_items`); the task is PROCESSING from then on."""
        task = self.tasks[task_id]
        total = task["total_items"]
        room = total - task["processed_items"] if total else processed
        processed = max(0, min(processed, room))
        skipped = max(0, min(skipped, processed))
        task["processed_items"] += processed
        task["images_skipped"] += skipped
        task["images_processed"] += processed - skipped
        task["progress"] = task["processed_items"] * 100 // total if total else 0
        if task["status"] == PENDING:
            task["status"] = PROCESSING
        task["started_at"] = task["started_at"] or _now()
        return task

    def finish_task(
        self, task_id: str, status: str = "completed", error_message: str | None = None
    ) -> dict[str, Any]:
        """Ends a task (`status` is upper-cased, as the seed's `PENDING`). A completed task
        has handled every item and its images become the set design's base images for
        its subject, one per shot type; a failed one keeps its counts."""
        task = self.tasks[task_id]
        task["status"] = status.upper()
        task["error_message"] = error_message
        task["started_at"] = task["started_at"] or _now()
        task["completed_at"] = _now()
        if task["status"] == COMPLETED:
            self.advance_task(task_id, processed=task["total_items"] - task["processed_items"])
            task["status"] = COMPLETED
            task["progress"] = 100
            shots = list(SHOT_TYPES.values())[: max(1, min(task["images_processed"], len(SHOT_TYPES)))]
            for shot_type_id in shots:
                self.add_base_image(task["set_design_id"], task["subject_id"], shot_type_id)
            task["result_data"] = {"base_images_created": len(shots)}
        return task

    def set_status(self, task_id: str, status: str, *, completed: bool = False) -> None:
        """Sets `status` verbatim (any spelling); `completed` also stamps `completed_at`."""
        task = self.tasks[task_id]
        task["status"] = status
        if completed:
            task["completed_at"] = _now()

    def remove_task(self, task_id: str) -> None:
        del self.tasks[task_id]

    def latest_task(self, set_design_id: str, subject_id: str) -> dict[str, Any] | None:
        """The most recent task of a set design and subject (by creation, ties by insertion)."""
        matching = [
            t
            for t in self.tasks.values()
            if (t["set_design_id"], t["subject_id"]) == (set_design_id, subject_id)
        ]
        return max(enumerate(matching), key=lambda p: (p[1]["created_at"], p[0]))[1] if matching else None

    def expire_tokens(self) -> None:
        """Every issued token stops working, as when they pass their lifetime."""
        self.tokens.clear()

    def add_many(self, n: int) -> list[str]:
        """`n` set designs, each with base images for one subject and a PENDING upload for
        another. Returns the task ids."""
        task_ids = []
        for _ in range(n):
            subject, newcomer = self._new_id("subject"), self._new_id("subject")
            sd_id = self.add_set_design(base_images=[(subject, s) for s in SHOT_TYPES.values()])
            task_ids.append(self.add_task(sd_id, newcomer, total_items=8))
        return task_ids

    # ---- scripted progression ------------------------------------------------------------

    def step(self, rng: random.Random) -> list[str]:
        """One tick: a PENDING task starts, a PROCESSING one handles a few items (now and
        then skipping one), finishes when all are done, or rarely fails with an error."""
        changed: list[str] = []
        for tid, task in list(self.tasks.items()):
            was = task["status"]
            if was.casefold() in CLOSED:
                continue
            skipped_before = task["images_skipped"]
            roll = rng.random()
            if roll < 0.03:
                self.finish_task(tid, "failed", rng.choice(ERRORS))
            elif was == PENDING:
                if roll < 0.6:
                    self.advance_task(tid, processed=0)
            elif task["processed_items"] >= task["total_items"]:
                self.finish_task(tid, "completed")
            else:
                n = rng.randint(1, max(1, task["total_items"] // 3))
                self.advance_task(tid, processed=n, skipped=1 if rng.random() < 0.1 else 0)
            if task["status"] != was:
                changed.append(f"sartiq:upload_task:{tid} {was} → {task['status']}")
            elif task["images_skipped"] != skipped_before:
                changed.append(f"sartiq:upload_task:{tid} skipped {task['images_skipped']}")
        return changed

    # ---- API routes ----------------------------------------------------------------------

    def add_api_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/login/access-token", self._login)
        app.router.add_get("/api/v1/set-designs/", self._list_set_designs)
        app.router.add_get("/api/v1/set-designs/upload-tasks/{task_id}", self._get_task)
        app.router.add_get("/api/v1/set-designs/{id}", self._get_set_design)
        app.router.add_get("/api/v1/set-designs/{set_design_id}/base-images/upload-task", self._get_latest)

    async def _login(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        missing = [k for k in ("username", "password") if not form.get(k)]
        if missing:
            detail = [
                {"type": "missing", "loc": ["body", k], "msg": "Field required", "input": None}
                for k in missing
            ]
            return json_response({"detail": detail}, status=422)
        if form.get("grant_type") not in (None, "password"):
            detail = [
                {
                    "type": "string_pattern_mismatch",
                    "loc": ["body", "grant_type"],
                    "msg": "String should match pattern '^password$'",
                    "input": str(form.get("grant_type")),
                }
            ]
            return json_response({"detail": detail}, status=422)
        if (form["username"], form["password"]) != (self.username, self.password):
            return json_response({"detail": BAD_CREDENTIALS}, status=400)
        token = "sim-sartiq-" + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return json_response({"access_token": token, "token_type": "bearer"})

    def _refusal(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            return json_response({"detail": BAD_TOKEN}, status=401, headers={"WWW-Authenticate": "Bearer"})
        return None

    def _render_set_design(self, design: dict[str, Any]) -> dict[str, Any]:
        """The set design as the API shows it: media URLs freshly presigned."""
        out = copy.deepcopy(design)
        for image in out["base_images"]:
            media = image["image_media"]
            signature = f"X-Amz-Expires=3600&X-Amz-Signature={secrets.token_hex(16)}"
            media["url"] = f"{CDN}{media['url']}?{signature}"
            image["image_url"] = media["url"]
        return out

    async def _list_set_designs(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            skip, limit = int(request.query.get("skip", "0")), int(request.query.get("limit", "100"))
            if skip < 0 or limit < 1:
                raise ValueError
        except ValueError:
            detail = [
                {"type": "int_parsing", "loc": ["query", "skip/limit"], "msg": "skip ≥ 0 and limit ≥ 1"}
            ]
            return json_response({"detail": detail}, status=422)
        rows = [
            d
            for d in self.set_designs.values()
            if all(request.query.get(k) in (None, d[k]) for k in ("organization_id", "owner_id"))
        ]
        page = rows[skip : skip + limit]
        return json_response({"data": [self._render_set_design(d) for d in page], "count": len(rows)})

    async def _get_set_design(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        design = self.set_designs.get(request.match_info["id"])
        if design is None:
            return json_response({"detail": "Set design not found"}, status=404)
        return json_response(self._render_set_design(design))

    async def _get_task(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        task = self.tasks.get(request.match_info["task_id"])
        if task is None:
            return json_response({"detail": "Upload task not found"}, status=404)
        return json_response(task)

    async def _get_latest(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        subject_id = request.query.get("subject_id")
        if not subject_id:
            detail = [
                {"type": "missing", "loc": ["query", "subject_id"], "msg": "Field required", "input": None}
            ]
            return json_response({"detail": detail}, status=422)
        set_design_id = request.match_info["set_design_id"]
        if set_design_id not in self.set_designs:
            return json_response({"detail": "Set design not found"}, status=404)
        task = self.latest_task(set_design_id, subject_id)
        if task is None:
            return json_response(
                {"detail": "No upload task found for this set design and subject"}, status=404
            )
        return json_response(task)

    # ---- control routes ------------------------------------------------------------------

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_get("/state", self._ctl_state)
        app.router.add_post("/set-designs", self._ctl_add_set_design)
        app.router.add_post("/set-designs/{id}/base-images", self._ctl_add_base_image)
        app.router.add_delete("/set-designs/{id}", self._ctl_remove_set_design)
        app.router.add_post("/tasks", self._ctl_add_task)
        app.router.add_post("/tasks/{id}/advance", self._ctl_advance)
        app.router.add_post("/tasks/{id}/finish", self._ctl_finish)
        app.router.add_post("/tasks/{id}/status", self._ctl_status)
        app.router.add_delete("/tasks/{id}", self._ctl_remove_task)
        app.router.add_post("/tokens/expire", self._ctl_expire)

    async def _ctl_state(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "set_designs": {
                    k: {"name": d["name"], "base_images": len(d["base_images"])}
                    for k, d in self.set_designs.items()
                },
                "tasks": {k: t["status"] for k, t in self.tasks.items()},
                "token_requests": self.token_requests,
            }
        )

    async def _ctl_add_set_design(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        pairs = [
            (str(i.get("subject_id")), str(i.get("shot_type_id")))
            for i in data.get("base_images") or ()
            if isinstance(i, dict)
        ]
        try:
            sd_id = self.add_set_design(
                data.get("name"), set_design_id=data.get("set_design_id"), base_images=pairs
            )
        except ValueError as exc:
            return json_response({"detail": str(exc)}, status=409)
        return json_response(self.set_designs[sd_id], status=201)

    async def _ctl_add_base_image(self, request: web.Request) -> web.Response:
        sd_id, data = request.match_info["id"], await read_json_object(request)
        if sd_id not in self.set_designs:
            return json_response({"detail": "Set design not found"}, status=404)
        if not (data.get("subject_id") and data.get("shot_type_id")):
            return json_response({"detail": "subject_id and shot_type_id are required"}, status=400)
        image_id = self.add_base_image(sd_id, str(data["subject_id"]), str(data["shot_type_id"]))
        return json_response({"id": image_id}, status=201)

    async def _ctl_remove_set_design(self, request: web.Request) -> web.Response:
        sd_id = request.match_info["id"]
        if sd_id not in self.set_designs:
            return json_response({"detail": "Set design not found"}, status=404)
        self.remove_set_design(sd_id)
        return json_response({"removed": sd_id})

    async def _ctl_add_task(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        if not (data.get("set_design_id") and data.get("subject_id")):
            return json_response({"detail": "set_design_id and subject_id are required"}, status=400)
        try:
            tid = self.add_task(
                str(data["set_design_id"]),
                str(data["subject_id"]),
                int(data.get("total_items", 4)),
                task_id=data.get("task_id"),
            )
        except KeyError:
            return json_response({"detail": "Set design not found"}, status=404)
        except (TypeError, ValueError) as exc:
            return json_response({"detail": str(exc)}, status=400)
        return json_response(self.tasks[tid], status=201)

    async def _ctl_advance(self, request: web.Request) -> web.Response:
        tid, data = request.match_info["id"], await read_json_object(request)
        if tid not in self.tasks:
            return json_response({"detail": "Upload task not found"}, status=404)
        try:
            task = self.advance_task(tid, int(data.get("processed", 1)), int(data.get("skipped", 0)))
        except (TypeError, ValueError) as exc:
            return json_response({"detail": str(exc)}, status=400)
        return json_response(task)

    async def _ctl_finish(self, request: web.Request) -> web.Response:
        tid, data = request.match_info["id"], await read_json_object(request)
        if tid not in self.tasks:
            return json_response({"detail": "Upload task not found"}, status=404)
        task = self.finish_task(tid, str(data.get("status", "completed")), data.get("error_message"))
        return json_response(task)

    async def _ctl_status(self, request: web.Request) -> web.Response:
        tid, data = request.match_info["id"], await read_json_object(request)
        if tid not in self.tasks:
            return json_response({"detail": "Upload task not found"}, status=404)
        if not isinstance(data.get("status"), str):
            return json_response({"detail": "status (a string) is required"}, status=400)
        self.set_status(tid, data["status"], completed=bool(data.get("completed")))
        return json_response(self.tasks[tid])

    async def _ctl_remove_task(self, request: web.Request) -> web.Response:
        tid = request.match_info["id"]
        if tid not in self.tasks:
            return json_response({"detail": "Upload task not found"}, status=404)
        self.remove_task(tid)
        return json_response({"removed": tid})

    async def _ctl_expire(self, request: web.Request) -> web.Response:
        self.expire_tokens()
        return json_response({"expired": True})

