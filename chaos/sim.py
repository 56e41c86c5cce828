"""The simulator as the chaos run uses it: all four providers in this process, every API
request recorded (when, which resources it polled, from which client port while in
flight), and the resources the run changes, each with the states it moves between."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from chaos.score import PollRequest
from simulator.core import Handler, Simulator
from simulator.registry import build_simulator

__all__ = ["AUTH_PATHS", "RecordingSimulator", "Target", "make_targets", "polled_rkeys"]

AUTH_PATHS = frozenset({"/oauth2/token", "/api/v1/login/access-token"})
"""Token requests: traffic, not polls."""

STATES: dict[str, tuple[str, ...]] = {
    # open states only: a terminal one would slow the resource's polls down
    "artistree": ("In Progress", "Action Required", "Reviewed"),
    "rev": ("Transcribing", "Finding Transcriptionist", "In Progress"),
    "sartiq": ("PENDING", "PROCESSING", "QUEUED"),
    "deepomatic": ("in progress", "complete"),
}


def polled_rkeys(provider: str, path: str) -> tuple[str, ...] | None:
    """The resources a request of `provider` at `path` (relative to its base URL) polls;
    None for a list or scan page (every resource of the provider, here), () for neither."""
    parts = [p for p in path.split("/") if p]
    if provider == "rev":
        if parts[:3] == ["api", "v1", "orders"]:
            return (f"rev:order:{parts[3]}",) if len(parts) == 4 else None
    elif provider == "artistree":
        if parts[:2] == ["v1", "orders"]:
            return (f"artistree:order:{parts[2]}",) if len(parts) == 3 else None
    elif provider == "deepomatic":
        if parts[:2] == ["v0.2", "work-orders"] and len(parts) >= 3:
            return (f"deepomatic:work_order:{parts[2]}",)
    elif provider == "sartiq" and parts[:4] == ["api", "v1", "set-designs", "upload-tasks"] and len(parts) == 5:
        return (f"sartiq:upload_task:{parts[4]}",)
    return ()


@dataclass
class InFlight:
    provider: str
    since: float


class RecordingSimulator(Simulator):
    """A `Simulator` whose app records every provider API request before the fault table
    sees it (a delayed request is recorded when it arrives)."""

    def __init__(self, base: Simulator) -> None:
        super().__init__(list(base.providers.values()))
        self.polls: list[PollRequest] = []
        self.in_flight: dict[int, InFlight] = {}
        """client port -> the request it has in flight"""

    def make_app(self) -> web.Application:
        app = super().make_app()
        app.middlewares.insert(0, self._record)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        parts = request.path.split("/", 2)
        provider = parts[1] if len(parts) > 1 else ""
        if provider not in self.providers:
            return await handler(request)
        rel = "/" + (parts[2] if len(parts) > 2 else "")
        if rel not in AUTH_PATHS:
            self.polls.append(PollRequest(time.time(), provider, polled_rkeys(provider, rel)))
        peer = request.transport.get_extra_info("peername") if request.transport else None
        port = int(peer[1]) if peer else 0
        self.in_flight[port] = InFlight(provider, time.monotonic())
        try:
            return await handler(request)
        finally:
            self.in_flight.pop(port, None)


@dataclass
class Target:
    """One resource the run changes: its rkey, the states it moves between, how to set one."""

    rkey: str
    provider: str
    states: tuple[str, ...]
    state: str
    setter: Callable[[str], None] = field(repr=False)
    probe: bool = False
    """reserved for the probes made when Redis answers again (never changed by the stream)"""
    eligible_at: float = 0.0
    changed_at: float = 0.0

    def set(self, state: str) -> None:
        self.setter(state)
        self.state = state


def _setter(method: Callable[[str, str], Any], rid: str) -> Callable[[str], None]:
    def set_state(state: str) -> None:
        method(rid, state)

    return set_state


def make_targets(per_provider: int) -> tuple[RecordingSimulator, list[Target], dict[str, Any]]:
    """The simulator with `per_provider` resources per provider (the last of each is a
    probe), their targets, and what the config's watches need (ids per provider)."""
    sim = RecordingSimulator(build_simulator())
    targets: list[Target] = []
    ids: dict[str, Any] = {}

    art = sim["artistree"]
    art_ids = art.add_many(per_provider, state=STATES["artistree"][0])
    for oid in art_ids:
        targets.append(Target(f"artistree:order:{oid}", "artistree", STATES["artistree"], STATES["artistree"][0],
                              _setter(art.set_state, oid)))
    ids["artistree"] = art_ids

    rev = sim["rev"]
    rev_ids = [rev.add_order(status=STATES["rev"][0]) for _ in range(per_provider)]
    for n in rev_ids:
        targets.append(Target(f"rev:order:{n}", "rev", STATES["rev"], STATES["rev"][0],
                              _setter(rev.set_status, n)))
    ids["rev"] = rev_ids

    sq = sim["sartiq"]
    sq_ids = [str(t) for t in sq.add_many(per_provider)]
    for tid in sq_ids:
        sq.set_status(tid, STATES["sartiq"][0])
        targets.append(Target(f"sartiq:upload_task:{tid}", "sartiq", STATES["sartiq"], STATES["sartiq"][0],
                              _setter(sq.set_status, tid)))
    ids["sartiq"] = sq_ids

    dp = sim["deepomatic"]
    dp_ids = [str(w) for w in dp.add_many(per_provider)]
    for wid in dp_ids:
        dp.set_progress(wid, 50)

        def set_derived(state: str, wid: str = wid) -> None:
            dp.set_progress(wid, 100 if state == "complete" else 50)

        targets.append(Target(f"deepomatic:work_order:{wid}", "deepomatic", STATES["deepomatic"],
                              STATES["deepomatic"][0], set_derived))
    ids["deepomatic"] = dp_ids

    seen: set[str] = set()
    for t in reversed(targets):  # the last resource of each provider is its probe
        if t.provider not in seen:
            t.probe = True
            seen.add(t.provider)
    return sim, targets, ids
