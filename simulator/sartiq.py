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

This module is the HTTP side; the set designs, tasks and their progression are
simulator/sartiq_data.py.
"""

from __future__ import annotations

import copy
import secrets
from typing import Any

from aiohttp import web

from simulator.core import SimProvider, json_response, read_json_object
from simulator.sartiq_data import BAD_CREDENTIALS, BAD_TOKEN, CDN, SHOT_TYPES, SartiqData

__all__ = ["SHOT_TYPES", "SartiqSim"]


class SartiqSim(SartiqData, SimProvider):
    name = "sartiq"

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

