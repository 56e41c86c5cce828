"""Deepomatic work orders in the stand-in: the records, and the payload the API answers
with, in the seed's (004_*) shape. The HTTP side is simulator/deepomatic.py.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

__all__ = ["SimTask", "SimWorkOrder", "new_id", "now_text", "work_order_payload"]

STORAGE = "https://storage.googleapis.com/dp-resources-sim/inputs"


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class SimTask:
    name: str
    type: str
    group_name: str
    id: str = field(default_factory=new_id)
    group_id: str = field(default_factory=new_id)
    state_id: str = field(default_factory=new_id)
    input_id: str = field(default_factory=new_id)
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
    site_id: str = field(default_factory=new_id)
    app_version_id: str = field(default_factory=new_id)
    progress_score: float = 0
    review_date: str | None = None
    create_date: str = field(default_factory=now_text)
    update_date: str = field(default_factory=now_text)
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    types: list[dict[str, str]] = field(default_factory=list)
    context_input_id: str = field(default_factory=new_id)
    field_engineer_name: str = "Richard Roe"
    field_engineer_email: str = "richard.roe@example.com"

    def task(self, name: str) -> SimTask:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"work order {self.id} has no task {name!r}")

    def touch(self) -> None:
        self.update_date = now_text()


def work_order_payload(wo: SimWorkOrder, *, include_inputs: bool = True) -> dict[str, Any]:
    """The work order as the API answers it (image URLs freshly signed)."""
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
