"""The stream of state changes the run makes, and its log: what changed, to what, when.

Every change is kept at least `hold_min` (≥ 3 poll intervals), so that any poller polling
on time sees it. A state that lives through a protected window (a Redis outage, the
takeover time after a worker kill, the re-baseline after a data loss) — made inside it, or
made shortly before it opened — is kept until the window has closed and `hold_after` more: each
resource changes at most once per window, so what a window hides is detectable once it
ends, never superseded by the next change (that would be a miss no statehook could avoid).
Probe resources (one per provider) are left to the probes made the moment Redis answers
again, which measure recovery.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chaos.score import Change
from chaos.sim import Target
from chaos.stack import receivers_for

__all__ = ["ChangeStream", "GroundTruth", "Window"]


@dataclass
class Window:
    name: str
    start: float
    end: float | None = None


@dataclass
class _Entry:
    n: int
    rkey: str
    from_state: str
    to_state: str
    at: float
    phase: str
    probe: bool
    until: float | None = None


@dataclass
class GroundTruth:
    """The log of changes, appended as they are made (JSON lines in `path`)."""

    path: Path
    entries: list[_Entry] = field(default_factory=list)
    _last: dict[str, _Entry] = field(default_factory=dict)

    def record(self, target: Target, to_state: str, at: float, phase: str) -> _Entry:
        prev = self._last.get(target.rkey)
        if prev is not None:
            prev.until = at
        entry = _Entry(len(self.entries) + 1, target.rkey, target.state, to_state, at, phase, target.probe)
        self.entries.append(entry)
        self._last[target.rkey] = entry
        with self.path.open("a") as f:
            f.write(json.dumps({"n": entry.n, "rkey": entry.rkey, "from": entry.from_state, "to": to_state,
                                "at": round(at, 3), "phase": phase, "probe": target.probe}) + "\n")
        return entry

    def changes(self) -> list[Change]:
        return [Change(n=e.n, rkey=e.rkey, to_state=e.to_state, at=e.at, until=e.until,
                       receivers=receivers_for(e.rkey.split(":", 1)[0], e.to_state), from_state=e.from_state,
                       phase=e.phase, probe=e.probe) for e in self.entries]


@dataclass
class ChangeStream:
    targets: Sequence[Target]
    truth: GroundTruth
    rng: random.Random
    every: float
    """seconds between two changes"""
    hold_min: float
    hold_max: float
    hold_after: float
    """how long a change made inside a window is kept after the window closed"""
    phase: str = "warm-up"
    paused: bool = True
    windows: list[Window] = field(default_factory=list)

    def open_window(self, name: str, at: float | None = None) -> Window:
        w = Window(name, time.time() if at is None else at)
        self.windows.append(w)
        return w

    def close_window(self, w: Window, at: float | None = None) -> None:
        w.end = time.time() if at is None else at

    def eligible(self, t: Target, now: float) -> bool:
        """Kept its hold, and if its state lives through a window (made inside it, or less
        than `hold_min` before it opened: perhaps not yet detected), that window has closed
        `hold_after` ago. A state older than that when a window opens was seen by a fleet
        that polls on time; it may be replaced, once, inside the window."""
        if now < t.eligible_at:
            return False
        for w in self.windows:
            if w.start > now or (w.end is not None and w.end <= t.changed_at):
                continue
            if t.changed_at >= w.start - self.hold_min and (w.end is None or now < w.end + self.hold_after):
                return False
        return True

    def change(self, t: Target, to_state: str | None = None, *, hold: float | None = None) -> None:
        """Set a new state on `t` now and log it."""
        now = time.time()
        to = to_state or self.rng.choice([s for s in t.states if s != t.state])
        self.truth.record(t, to, now, self.phase)
        t.set(to)
        t.changed_at = now
        t.eligible_at = now + (hold if hold is not None else self.rng.uniform(self.hold_min, self.hold_max))

    def step(self) -> bool:
        now = time.time()
        ready = [t for t in self.targets if not t.probe and self.eligible(t, now)]
        if not ready:
            return False
        self.change(self.rng.choice(ready))
        return True

    def probe(self) -> None:
        """One change on every probe resource, now (they are never frozen by a window)."""
        for t in self.targets:
            if t.probe:
                self.change(t)

    def flips(self, n: int, revert_after: float) -> list[tuple[Target, str]]:
        """Change `n` resources now; the caller reverts them after `revert_after` s (made and
        reverted inside a data loss: legitimately unobservable, counted apart)."""
        now = time.time()
        chosen = self.rng.sample([t for t in self.targets if not t.probe and now >= t.eligible_at], n)
        back = [(t, t.state) for t in chosen]
        for t in chosen:
            self.change(t, hold=revert_after)
        return back

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self.paused:
                self.step()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.every)
            except TimeoutError:
                pass
