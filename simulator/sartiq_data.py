"""Sartiq's set designs and base-image upload tasks in the stand-in, in the seed's shapes
(003_*), with the Python API that tests and the demo use and the scripted progression
(`step`). The HTTP side is simulator/sartiq.py.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

__all__ = ["BAD_CREDENTIALS", "BAD_TOKEN", "CDN", "SHOT_TYPES", "SartiqData"]

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


class SartiqData:
    """The set designs, the upload tasks and the accounts' tokens."""

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
