"""Which destinations an event goes to. Pure.

A route is known by its key, not its position: throttles and digest windows are filed
under it, so reordering `[[routes]]` keeps them. A named route's key follows its name; an
unnamed one's follows what it matches and where it sends (editing those starts afresh).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

import orjson

from model.events import Event
from model.operational import about_destination
from model.routes import Route, RouteMatch

__all__ = ["RouteTable", "Selection", "matches", "route_key", "route_keys", "select"]


@dataclass(frozen=True, slots=True)
class Selection:
    destination: str
    route: str
    """key of the first route that selected it (its throttle and template apply)"""


def route_key(route: Route) -> str:
    """`n-…` from the name, or `h-…` from the match and targets; safe in a Redis key."""
    if route.name is not None:
        basis, tag = route.name.encode(), "n"
    else:
        basis = orjson.dumps({"match": route.match.model_dump(mode="json"), "to": route.to},
                             option=orjson.OPT_SORT_KEYS)
        tag = "h"
    return f"{tag}-{hashlib.blake2b(basis, digest_size=8).hexdigest()}"


def route_keys(routes: Sequence[Route]) -> list[str]:
    """Each route's key; an unnamed route identical to an earlier one gets `~2`, `~3`…"""
    out: list[str] = []
    seen: dict[str, int] = {}
    for route in routes:
        key = route_key(route)
        seen[key] = seen.get(key, 0) + 1
        out.append(key if seen[key] == 1 else f"{key}~{seen[key]}")
    return out


@dataclass(frozen=True, slots=True)
class RouteTable:
    """A config's routes with their keys, computed once (the dispatcher selects per event)."""

    routes: tuple[Route, ...]
    keys: tuple[str, ...]

    @classmethod
    def of(cls, routes: Sequence[Route]) -> RouteTable:
        return cls(tuple(routes), tuple(route_keys(routes)))

    def __getitem__(self, key: str) -> Route:
        try:
            return self.routes[self.keys.index(key)]
        except ValueError:
            raise KeyError(key) from None

    def get(self, key: str) -> Route | None:
        """The route of `key`; None when it left the config (a window filed before a change)."""
        return self.routes[self.keys.index(key)] if key in self.keys else None

    def select(self, event: Event) -> list[Selection]:
        return select(event, self.routes, self.keys)


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


def select(event: Event, routes: Sequence[Route], keys: Sequence[str] | None = None) -> list[Selection]:
    """Every destination of every matching route, each once, in route order. `keys` are
    `route_keys(routes)`, for a caller that computed them once. An operational event about a
    destination is never selected for it (a failing destination is not told of its failures)."""
    chosen: dict[str, Selection] = {}
    about = about_destination(event.type, event.data)
    for key, route in zip(route_keys(routes) if keys is None else keys, routes, strict=True):
        if matches(route.match, event):
            for dest in route.to:
                if dest != about:
                    chosen.setdefault(dest, Selection(dest, key))
    return list(chosen.values())
