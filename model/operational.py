"""statehook's own operational events: their types and what they are about (`Subject`).

They are events like any other (same envelope, routed and signed the same way), with
provider `statehook` and a resource that names the subject: `statehook:provider:rev`,
`statehook:destination:slack-ops`, `statehook:watch:<rkey>`. One about a destination
names it in `data["destination"]` and is never delivered there (core/route.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "OPERATIONAL_PREFIX",
    "OPERATIONAL_PROVIDER",
    "OPERATIONAL_TYPES",
    "Subject",
    "SubjectKind",
    "about_destination",
    "is_operational",
]

OPERATIONAL_PROVIDER = "statehook"
OPERATIONAL_PREFIX = "statehook."

PROVIDER_UNHEALTHY = "statehook.provider.unhealthy"
PROVIDER_RECOVERED = "statehook.provider.recovered"
WATCH_OVERDUE = "statehook.watch.overdue"
WATCH_RECOVERED = "statehook.watch.recovered"
DELIVERY_DEAD_LETTERED = "statehook.delivery.dead_lettered"
DESTINATION_DISABLED = "statehook.destination.disabled"
DESTINATION_ENABLED = "statehook.destination.enabled"
DESTINATION_UNHEALTHY = "statehook.destination.unhealthy"
DESTINATION_RECOVERED = "statehook.destination.recovered"

OPERATIONAL_TYPES = (
    PROVIDER_UNHEALTHY, PROVIDER_RECOVERED, WATCH_OVERDUE, WATCH_RECOVERED, DELIVERY_DEAD_LETTERED,
    DESTINATION_DISABLED, DESTINATION_ENABLED, DESTINATION_UNHEALTHY, DESTINATION_RECOVERED,
)

SubjectKind = Literal["provider", "watch", "destination", "delivery"]


@dataclass(frozen=True, slots=True)
class Subject:
    """What an operational event is about; its `key` is the event's resource key."""

    kind: SubjectKind
    name: str

    @property
    def key(self) -> str:
        return f"{OPERATIONAL_PROVIDER}:{self.kind}:{self.name}"

    def resource(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.name, "key": self.key, "url": None, "title": f"{self.kind} {self.name}"}


def is_operational(event_type: str) -> bool:
    return event_type.startswith(OPERATIONAL_PREFIX) and event_type != "statehook.digest"


def about_destination(event_type: str, data: dict[str, Any]) -> str | None:
    """The destination an operational event is about (it is never delivered there)."""
    if not is_operational(event_type):
        return None
    dest = data.get("destination")
    return dest if isinstance(dest, str) else None
