"""Operating deliveries: the dead-letter stream (list, replay once, purge), `notify test`
through the real delivery path, and the recorded attempts of an event; through the
`statehook` command line where it matters."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from arq.connections import ArqRedis
from click.testing import Result
from typer.testing import CliRunner

from config import Config
from core.circuit import Circuit, Status
from simulator.receivers import WebhookReceiver
from store import keys
from store.circuit import Circuits
from store.history import read_history_entry
from tests.conftest import wait_for
from tests.kit import WHSEC, running_worker, telling_deliveries, timeline, write_config
from tests.test_routes import equals, event, publish
from worker.cli import app
from worker.delivery_ops import disable_destination, list_dead_letters, purge_dead_letters, replay_dead_letters

FAST = {"retry_schedule": [0.05, 0.05, 0.05], "jitter": 0.0}


def config(tmp_path: Path, redis_url: str, receiver: WebhookReceiver) -> Config:
    return write_config(tmp_path / "statehook.toml", redis_url=redis_url, providers={},
                        destinations={"hook": {"kind": "webhook", "url": receiver.url, "secret": WHSEC, **FAST}},
                        routes=[{"to": ["hook"]}])


async def cli(*args: str) -> Result:
    """The `statehook` command, in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


def failed(rid: str = "ord-1") -> Any:
    return event("artistree.order.state_changed", "critical", to="Failed", rid=rid)


async def dead_letter_two(cfg: Config, redis: aioredis.Redis, receiver: WebhookReceiver) -> None:
    receiver.script = [400, 422]
    async with running_worker(cfg):
        await publish(redis, failed("ord-1"), failed("ord-2"))
        await wait_for(lambda: equals(redis.xlen(keys.DLQ), 2), what="two dead letters")


async def test_a_replay_from_the_dead_letter_stream_delivers_once(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, arq: ArqRedis, receiver: WebhookReceiver
) -> None:
    cfg = config(tmp_path, redis_url, receiver)
    await dead_letter_two(cfg, redis, receiver)
    letters = await list_dead_letters(redis)
    # the two deliveries run concurrently: either may have met the scripted 400
    assert sorted((d["event_id"], d["status"]) for d in letters) in (
        sorted([(failed("ord-1").id, 400), (failed("ord-2").id, 422)]),
        sorted([(failed("ord-1").id, 422), (failed("ord-2").id, 400)]),
    )
    first = next(d for d in letters if d["event_id"] == failed("ord-1").id)
    second = next(d for d in letters if d is not first)
    assert first["destination"] == "hook"

    # an operator replays one entry twice, at once: it is queued once and removed
    again = [replay_dead_letters(arq, [first["id"]], history_length=50) for _ in range(2)]
    outcomes = await asyncio.gather(*again)
    assert sum(o.enqueued for batch in outcomes for o in batch) == 1
    assert [d["id"] for d in await list_dead_letters(redis)] == [second["id"]]
    # the resource's timeline notes the replay once, naming the destination and the dead letter
    notes = [read_history_entry(raw, failed("ord-1").rkey)
             for raw in await timeline(redis, failed("ord-1").rkey)]
    noted = {"destination": "hook", "dead_letter": first["id"]}
    assert [(n["type"], n["note"]) for n in notes] == [("replayed", noted)]
    assert notes[0]["id"] == failed("ord-1").id
    async with running_worker(cfg):
        await wait_for(lambda: len(receiver.delivered) == 1, what="the replayed delivery")
        assert await replay_dead_letters(arq, [first["id"]], history_length=50) == []  # gone from the stream
        await publish(redis, failed("ord-9"))  # the worker is busy with other things meanwhile
        await wait_for(lambda: len(receiver.delivered) == 2)
    assert receiver.unique_ids()[failed("ord-1").id] == 1
    assert await redis.xlen(keys.DLQ) == 1


async def test_dlq_ls_replay_and_purge_from_the_command_line(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    cfg = config(tmp_path, redis_url, receiver)
    path = str(tmp_path / "statehook.toml")
    await dead_letter_two(cfg, redis, receiver)
    listed = await cli("dlq", "ls", "-c", path)
    assert listed.exit_code == 0, listed.output
    assert "2 dead letter(s)" in listed.output and "scripted 400" in listed.output and "scripted 422" in listed.output
    entries = orjson.loads((await cli("dlq", "ls", "-c", path, "--json")).output)
    assert sorted(e["status"] for e in entries) == [400, 422]  # in either order: deliveries run concurrently

    assert (await cli("dlq", "replay", "-c", path)).exit_code == 2  # ids or --all
    missing = await cli("dlq", "replay", "0-1", "-c", path)
    assert missing.exit_code == 1 and "no such dead letter" in missing.output
    replayed = await cli("dlq", "replay", entries[0]["id"], "-c", path)
    assert replayed.exit_code == 0 and "1 replayed" in replayed.output
    async with running_worker(cfg):
        await wait_for(lambda: len(receiver.delivered) == 1, what="the replayed delivery")
        replayed_all = await cli("dlq", "replay", "--all", "-c", path)
        assert "1 replayed" in replayed_all.output
        await wait_for(lambda: len(receiver.delivered) == 2, what="the other one")
    assert (await cli("dlq", "ls", "-c", path)).output.strip() == "no dead letters"

    receiver.script = [400]
    async with running_worker(cfg):
        await publish(redis, failed("ord-3"))
        await wait_for(lambda: redis.xlen(keys.DLQ), what="another dead letter")
    purged = await cli("dlq", "purge", "--yes", "-c", path)
    assert purged.exit_code == 0 and "1 dead letter(s) deleted" in purged.output
    assert await purge_dead_letters(redis) == 0


async def test_notify_test_sends_a_sample_event_through_the_real_path(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    config(tmp_path, redis_url, receiver)
    path = str(tmp_path / "statehook.toml")
    result = await cli("notify", "test", "hook", "-c", path)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("delivered evt_test_") and "status 204" in result.output
    (got,) = receiver.delivered
    assert got.verified and got.event["type"] == "statehook.test.state_changed"
    attempts = await cli("notify", "attempts", got.event["id"], "-c", path)
    assert " hook " in attempts.output and "ok" in attempts.output

    receiver.script = [400]
    refused = await cli("notify", "test", "hook", "-c", path, "--severity", "info")
    assert refused.exit_code == 1 and "dead-lettered: HTTP 400: scripted 400" in refused.output
    assert (await list_dead_letters(redis))[0]["type"] == "statehook.test.state_changed"

    unknown = await cli("notify", "test", "nope", "-c", path)
    assert unknown.exit_code == 2 and unknown.output == "error: no destination named 'nope' (known: hook)\n"


async def test_notify_test_via_a_running_worker(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    cfg = config(tmp_path, redis_url, receiver)
    async with running_worker(cfg):
        result = await cli("notify", "test", "hook", "--via-worker", "--timeout", "10", "-c",
                           str(tmp_path / "statehook.toml"))
    assert result.exit_code == 0, result.output
    assert len(receiver.delivered) == 1


async def test_notify_test_via_a_worker_says_when_the_destinations_circuit_holds_it(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    """It said "no worker took it: is statehook run running?" while a worker ran and held it."""
    cfg = config(tmp_path, redis_url, receiver)
    opened = Circuit(Status.OPEN, opened_at=time.time(), next_probe=time.time() + 3600, reason="HTTP 503")
    await Circuits(redis).change("hook", lambda _: opened)
    async with running_worker(cfg):
        result = await cli("notify", "test", "hook", "--via-worker", "--timeout", "3", "-c",
                           str(tmp_path / "statehook.toml"))
    assert result.exit_code == 1
    assert "waits behind hook's open circuit (HTTP 503): it is sent when the destination answers again" \
        in result.output, result.output
    assert receiver.delivered == []


async def test_notify_test_via_a_worker_says_a_disabled_destination_dead_letters_it_and_a_failure_is_retried(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    """Each said "no worker took it" or "failed" as if final (found by fresh-user trials)."""
    cfg = config(tmp_path, redis_url, receiver)
    path = str(tmp_path / "statehook.toml")
    receiver.script = [500]
    async with running_worker(cfg):
        retried = await cli("notify", "test", "hook", "--via-worker", "--timeout", "10", "-c", path)
        assert retried.exit_code == 1
        assert "failed: HTTP 500" in retried.output and "the worker retries it" in retried.output, retried.output
        await wait_for(lambda: len(receiver.delivered) == 1, what="the retry delivered")
        await disable_destination(redis, cfg, "hook", "by the test")
        refused = await cli("notify", "test", "hook", "--via-worker", "--timeout", "10", "-c", path)
    assert refused.exit_code == 1
    assert "hook is disabled (by the test" in refused.output and "dead-letters" in refused.output, refused.output


async def test_every_attempt_is_recorded_and_shown_per_event(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    cfg = config(tmp_path, redis_url, receiver)
    receiver.script = [500, 503]
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: len(receiver.delivered) == 1, what="the delivery")
        await wait_for(lambda: equals(redis.llen(keys.attempts(failed().id)), 3), what="3 attempts recorded")
    shown = await cli("notify", "attempts", failed().id, "-c", str(tmp_path / "statehook.toml"), "--json")
    attempts = orjson.loads(shown.output)
    assert [(a["attempt"], a["status"], a["ok"]) for a in attempts] == [
        (1, 500, False), (2, 503, False), (3, 204, True)]
    assert all(a["duration_ms"] >= 0 and a["destination"] == "hook" for a in attempts)
    assert attempts[0]["error"] == "HTTP 500: scripted 500"
    status = await cli("notify", "status", "-c", str(tmp_path / "statehook.toml"))
    assert "hook" in status.output and "webhook" in status.output and "ok" in status.output


async def test_dead_letter_counts_per_destination_follow_the_stream_without_reading_it(
    redis: aioredis.Redis
) -> None:
    deliveries = telling_deliveries(redis)
    ids = [await deliveries.dead_letter(failed(f"ord-{n}").to_json(), dest, "HTTP 400", 400, 1)
           for n, dest in enumerate(["hook", "hook", "ops", "hook"])]
    assert await deliveries.dead_letter_counts() == {"hook": 3, "ops": 1}
    await deliveries.remove_dead_letter(ids[2])
    await deliveries.remove_dead_letter(ids[2])  # twice (two operators at once): counted once
    await deliveries.remove_dead_letter("0-1")  # never there
    assert await deliveries.dead_letter_counts() == {"hook": 3}
    assert await redis.hgetall(keys.DLQ_COUNTS) == {b"hook": b"3"}  # the count, not a scan of the stream
    # a dataset written before the counts were kept: counted from the stream once, then kept
    await redis.delete(keys.DLQ_COUNTS)
    assert await deliveries.dead_letter_counts() == {"hook": 3}
    assert await redis.hgetall(keys.DLQ_COUNTS) == {b"hook": b"3"}
    assert await deliveries.purge_dead_letters() == 3
    assert await deliveries.dead_letter_counts() == {} and not await redis.exists(keys.DLQ_COUNTS)


async def test_an_unreadable_dead_letter_is_skipped_by_ls_and_replay_and_left_in_the_stream(
    redis: aioredis.Redis, arq: ArqRedis, monkeypatch: Any
) -> None:
    import store.deliveries

    monkeypatch.setattr(store.deliveries, "REPLAY_PAGE", 2)  # `replay --all` reads the stream by pages
    deliveries = telling_deliveries(redis)
    good = [await deliveries.dead_letter(failed(f"ord-{n}").to_json(), "hook", "HTTP 400", 400, 1) for n in range(3)]
    broken = await redis.xadd(keys.DLQ, {"event": b"{not json", "destination": "hook", "reason": "r"})
    await redis.hincrby(keys.DLQ_COUNTS, "hook", 1)  # type: ignore[misc]
    good.append(await deliveries.dead_letter(failed("ord-9").to_json(), "hook", "HTTP 400", 400, 1))
    assert [d["id"] for d in await list_dead_letters(redis)] == good
    assert int(await redis.hget(keys.STATS, "corrupt_records") or 0) == 1  # type: ignore[misc]
    outcomes = await replay_dead_letters(arq, None, history_length=50)
    assert [o.entry_id for o in outcomes] == good and all(o.enqueued for o in outcomes)
    assert [entry_id for entry_id, _ in await redis.xrange(keys.DLQ)] == [broken]
    assert await deliveries.dead_letter_counts() == {"hook": 1}
