"""`python -m benchmarks.recovery`: a webhook receiver down for 60 s, then healthy, against
two real worker processes; how long after it recovers the last held delivery arrives, and
whether any was lost or reordered.

The receiver answers 500 for the first half of the outage and is gone (a closed port) for
the second; meanwhile 50 orders change, four every half second, as events in the outbox.
The destination has its defaults: Svix's retry schedule (5 s, 5 min, 30 min, …) and the
circuit's (5 outage failures open it; probes after 1 s, 2 s, then every 3 s). Prints

    recovery: outage_s=60 last_held_after_recovery_s=… lost=0 reordered=0

and a few more figures (requests the receiver saw while down, the flush's length). Takes
about 75 s: a private redis-server on a free port, the receiver in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from benchmarks.infra import redis_server
from benchmarks.stack import WHSEC, Workers, wait_until
from config.toml_out import toml_value
from model.events import Event, Severity
from simulator.receivers import WebhookReceiver
from store import keys

__all__ = ["main", "recovery"]

ORDERS = 50
CHANGES_PER_TICK = 4
TICK = 0.5


def write_config(path: Path, redis_url: str, receiver_url: str) -> Path:
    path.write_text("\n".join([
        f"redis_url = {toml_value(redis_url)}", 'log_level = "info"', "",
        "[worker]", 'health_interval = "1s"', "",
        "[destinations.hook]", 'kind = "webhook"', f"url = {toml_value(receiver_url)}",
        f"secret = {toml_value(WHSEC)}", "",
        "[[routes]]", 'match = { type = ["artistree.*"] }', 'to = ["hook"]', "",
    ]))
    return path


def change(rid: str, seq: int) -> Event:
    """An order's state change as the core would commit it (seq counts per order)."""
    return Event(
        id=f"evt_recovery_{rid}_{seq}", type="artistree.order.state_changed", provider="artistree",
        resource={"kind": "order", "id": rid, "key": f"artistree:order:{rid}", "url": None, "title": rid},
        seq=seq, detected_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), severity=Severity.WARNING,
        summary=f"order {rid}: state {seq}", data={"changes": [], "from": "In Progress", "to": f"state {seq}"},
        snapshot=None)


async def _changes(redis: aioredis.Redis, until: float, sent: list[Event]) -> None:
    """Four orders change every half second until `until` (monotonic)."""
    rng, seqs = random.Random(18), dict.fromkeys((f"ord-{i}" for i in range(ORDERS)), 0)
    while time.monotonic() < until:
        async with redis.pipeline(transaction=False) as pipe:
            for rid in rng.sample(sorted(seqs), CHANGES_PER_TICK):
                seqs[rid] += 1
                e = change(rid, seqs[rid])
                sent.append(e)
                pipe.xadd(keys.OUTBOX, {"e": e.to_json()})
            await pipe.execute()
        await asyncio.sleep(TICK)


def figures(sent: list[Event], receiver: WebhookReceiver, recovered_at: float) -> dict[str, Any]:
    first: dict[str, tuple[float, dict[str, Any]]] = {}
    for r in receiver.delivered:
        first.setdefault(r.webhook_id, (r.at, r.event))
    arrived = [first[e.id] for e in sent if e.id in first]
    reordered = 0
    for rid in {e.resource["id"] for e in sent}:
        seqs = [ev["seq"] for _, ev in sorted(first.values(), key=lambda x: x[0]) if ev["resource"]["id"] == rid]
        reordered += seqs != sorted(seqs)
    return {
        "events": len(sent),
        "last_held_after_recovery_s": max(at for at, _ in arrived) - recovered_at if arrived else float("nan"),
        "first_held_after_recovery_s": min(at for at, _ in arrived) - recovered_at if arrived else float("nan"),
        "lost": len(sent) - len(arrived),
        "reordered": reordered,
        "duplicates": len(receiver.delivered) - len(first),
    }


async def recovery(workdir: Path, *, outage_s: float = 60.0, workers: int = 2) -> dict[str, Any]:
    """The scenario; its figures."""
    receiver = WebhookReceiver(secret=WHSEC)
    await receiver.start()
    port = int(receiver.base_url.rsplit(":", 1)[1])
    with redis_server(workdir) as rs:
        redis = aioredis.Redis.from_url(rs.url)
        procs = Workers(write_config(workdir / "statehook.toml", rs.url, receiver.url), workers,
                        workdir / "workers.log")
        procs.start()
        try:
            await procs.ready(redis)
            sent: list[Event] = []
            receiver.script = [500] * 1_000_000
            started = time.monotonic()
            changes = asyncio.create_task(_changes(redis, started + outage_s, sent))
            await asyncio.sleep(outage_s / 2)
            await receiver.stop()  # the second half: nothing listens
            down_requests = sum(receiver.attempts.values())
            await changes
            receiver.script.clear()
            await receiver.start(port=port)
            recovered_at = time.time()
            ids = {e.id for e in sent}

            async def all_in() -> bool:
                return ids <= set(receiver.unique_ids())

            await wait_until(all_in, 30.0, "every held delivery", every=0.01)
            result = figures(sent, receiver, recovered_at)
            unhealthy, recovered = await redis.hmget(keys.STATS, [
                "events_type:statehook.destination.unhealthy", "events_type:statehook.destination.recovered"])
            result.update(outage_s=outage_s, workers=workers, requests_while_answering_500=down_requests,
                          unhealthy=int(unhealthy or 0), recovered=int(recovered or 0),
                          dead_letters=int(await redis.xlen(keys.DLQ)))
            return result
        finally:
            await procs.stop()
            await redis.aclose()
            await receiver.stop()


def line(r: dict[str, Any]) -> str:
    return (f"recovery: outage_s={r['outage_s']:.0f} last_held_after_recovery_s={r['last_held_after_recovery_s']:.2f} "
            f"lost={r['lost']} reordered={r['reordered']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--outage", type=float, default=60.0, help="seconds the receiver is down")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="statehook-recovery-") as tmp:
        r = asyncio.run(recovery(Path(tmp), outage_s=args.outage, workers=args.workers))
    print(f"{r['events']} events over the outage; the first held delivery came "
          f"{r['first_held_after_recovery_s']:.2f} s after recovery; {r['requests_while_answering_500']} requests "
          f"answered 500 in the first half; {r['unhealthy']} unhealthy / {r['recovered']} recovered events; "
          f"{r['duplicates']} duplicates; {r['dead_letters']} dead letters")
    print(line(r))
    return 0 if r["lost"] == 0 and r["reordered"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
