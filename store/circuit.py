"""Each destination's circuit (core/circuit.py) as every worker shares it, and the deliveries
it holds, read and written here only:

- `sh:circ:s:{destination}` the circuit's record (absent: closed and clean), changed by a
  read, the pure rule, and a write that happens only if no other worker wrote in between
  (lua/circuit_swap.lua);
- `sh:circ:open` the destinations whose circuit is not closed (what the watcher visits);
- `sh:circ:h:{destination}` the held deliveries' event ids in arrival order (a ZSET scored by
  one counter, `sh:circ:seq`) and `sh:circ:e:{destination}` each one's entry: the attempts it
  had already made, when it was held, the event. Holding checks the status in the same step
  (lua/circuit_hold.lua), and the write that closes the circuit requires the held set to
  be empty, so a delivery is never left behind a closed circuit. They are Redis's like the
  outbox: a worker killed at any point loses none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from core.circuit import Circuit, Status, decode, encode
from store import keys

__all__ = ["SWAPS", "Circuits", "HeldEntry"]

SWAPS = 100
"""Attempts at writing a record back before giving up (each failure: another worker wrote)."""

_LUA = Path(__file__).parent / "lua"
_SWAP = (_LUA / "circuit_swap.lua").read_text()
_HOLD = (_LUA / "circuit_hold.lua").read_text()


@dataclass(frozen=True, slots=True)
class HeldEntry:
    """A delivery waiting for its destination: `attempts` it had made before (the next is
    numbered after them), when it was held, and the event as the outbox had it."""

    event_id: str
    event_json: bytes
    attempts: int
    held_at: float

    def encode(self) -> bytes:
        return f"{self.attempts}|{self.held_at:.3f}|".encode() + self.event_json

    @classmethod
    def decode(cls, event_id: str, raw: bytes) -> HeldEntry | None:
        parts = raw.split(b"|", 2)
        if len(parts) != 3:
            return None
        try:
            return cls(event_id, parts[2], int(parts[0]), float(parts[1]))
        except ValueError:
            return None


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class Circuits:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._swap = redis.register_script(_SWAP)
        self._hold = redis.register_script(_HOLD)

    async def read(self, destination: str) -> Circuit:
        return decode(await self.redis.get(keys.circuit(destination)))

    async def change(self, destination: str, rule: Callable[[Circuit], Circuit | None]) -> tuple[Circuit, Circuit]:
        """`rule(current)` written back (None or the same: no write); (before, after)."""
        for _ in range(SWAPS):
            raw = await self.redis.get(keys.circuit(destination))
            current = decode(raw)
            new = rule(current)
            if new is None or new == current:
                return current, current
            if await self._write(destination, raw, new, drained=False) == 1:
                return current, new
        raise RuntimeError(f"the circuit of {destination} changed under {SWAPS} attempts in a row")

    async def close_if_drained(self, destination: str, expected: Circuit, closed: Circuit) -> bool | None:
        """Writes `closed` if the record is still `expected` and nothing is held: True; False
        when deliveries are held (flush them first); None when the record changed."""
        raw = await self.redis.get(keys.circuit(destination))
        if decode(raw) != expected:
            return None
        wrote = await self._write(destination, raw, closed, drained=True)
        return True if wrote == 1 else (False if wrote == -1 else None)

    async def _write(self, destination: str, read: bytes | None, new: Circuit, *, drained: bool) -> int:
        value = b"" if new == Circuit() else encode(new)
        return int(await self._swap(
            keys=[keys.circuit(destination), keys.CIRCUITS_OPEN, keys.circuit_held(destination)],
            args=[read or b"", value, destination, "1" if new.status is not Status.CLOSED else "0",
                  "1" if drained else "0"]))

    async def not_closed(self) -> list[str]:
        """The destinations whose circuit is open or flushing (or was, for a moment)."""
        return sorted(_text(d) for d in await self.redis.smembers(keys.CIRCUITS_OPEN))  # type: ignore[misc]

    async def forget(self, destination: str) -> None:
        """Off the watcher's list (its record says closed)."""
        await self.redis.srem(keys.CIRCUITS_OPEN, destination)  # type: ignore[misc]

    # -- held deliveries -------------------------------------------------------------------

    async def hold(self, destination: str, entries: Sequence[HeldEntry]) -> bool:
        """Holds `entries` if the circuit is not closed: True; False (nothing held) if it is."""
        if not entries:
            return True
        args: list[str | bytes] = []
        for entry in entries:
            args += [entry.event_id, entry.encode()]
        held = await self._hold(keys=[keys.circuit(destination), keys.circuit_held(destination),
                                      keys.circuit_entries(destination), keys.CIRCUIT_SEQ], args=args)
        return bool(held)

    async def held(self, destination: str, count: int) -> list[HeldEntry]:
        """The oldest `count` held deliveries, in arrival order."""
        ids = await self.redis.zrange(keys.circuit_held(destination), 0, count - 1)
        if not ids:
            return []
        raws = await self.redis.hmget(keys.circuit_entries(destination), ids)  # type: ignore[misc]
        out, lost = [], []
        for raw_id, raw in zip(ids, raws, strict=True):
            entry = HeldEntry.decode(_text(raw_id), raw) if raw is not None else None
            if entry is None:
                lost.append(_text(raw_id))
            else:
                out.append(entry)
        if lost:  # an id without a readable entry can never be sent: it must not block the rest
            await self.release(destination, lost)
        return out

    async def held_count(self, destination: str) -> int:
        return int(await self.redis.zcard(keys.circuit_held(destination)))

    async def release(self, destination: str, event_ids: Sequence[str]) -> None:
        """`event_ids` are no longer held (sent, dead-lettered, or given a job of their own)."""
        if not event_ids:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.circuit_held(destination), *event_ids)
            pipe.hdel(keys.circuit_entries(destination), *event_ids)
            await pipe.execute()
