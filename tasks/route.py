"""Which destinations an event goes to. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from config.schema import Route, RouteMatch
from tasks.model import Event

__all__ = ["Selection", "matches", "select"]


@dataclass(frozen=True, slots=True)
class Selection:
    destination: str
    route: int
    """index of the first route that selected it (its throttle and template apply)"""


def matches(match: RouteMatch, event: Event) -> bool:
    if match.provider is not None and event.provider not in match.provider:
        return False
    if match.type is not None and not any(fnmatchcase(event.type, glob) for glob in match.type):
        return False
    if match.severity is not None and event.severity not in match.severity:
        return False
    if match.state is not None:
        state = event.target_state
        if state is None or state.casefold() not in {s.casefold() for s in match.state}:
            return False
    if match.tags is not None and not set(match.tags) & set(event.tags):
        return False
    return match.project is None or (event.project is not None and event.project in match.project)


def select(event: Event, routes: Sequence[Route]) -> list[Selection]:
    """Every destination of every matching route, each once, in route order."""
    chosen: dict[str, Selection] = {}
    for index, route in enumerate(routes):
        if matches(route.match, event):
            for dest in route.to:
                chosen.setdefault(dest, Selection(dest, index))
    return list(chosen.values())
