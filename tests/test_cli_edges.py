"""The operator's commands at their edges: a mistaken argument is one `error:` line (exit 2),
something absent is one line (exit 1), never a traceback; `events tail` when the outbox was
trimmed; `show`'s next poll while a claim leases the resource; a worker's shutdown lines;
`--help` of every command."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
import typer.main
from typer.testing import CliRunner, Result

from core.due import KEEP_DUE
from model.events import Event
from model.resources import ResourceRef
from store import keys
from store.snapshots import Commit, ResourceState, Store, WatchMeta, pack_snapshot
from tests.conftest import free_port, wait_for
from tests.kit import write_config
from tests.test_routes import event
from worker.cli import app
from worker.cli_show import next_poll, schedule_gap
from worker.cli_watch import scan_problems

STATEHOOK = str(Path(sys.executable).with_name("statehook"))
CLOSED = "http://127.0.0.1:1"  # no command here reaches a provider


@pytest.fixture
def config_path(tmp_path: Path, redis_url: str) -> str:
    write_config(
        tmp_path / "statehook.toml", redis_url=redis_url,
        providers={
            "rev": {"base_url": CLOSED, "client_key": "ck-1", "user_key": "uk-1"},
            "artistree": {"base_url": CLOSED, "client_id": "id-1", "client_secret": "cs-1"},
            "sartiq": {"base_url": CLOSED, "username": "u@example.com", "password": "pw-1"},
        },
        destinations={"a": {"kind": "console"}, "b": {"kind": "console"}},
        routes=[{"to": ["a"]}],
    )
    return str(tmp_path / "statehook.toml")


async def cli(*args: str) -> Result:
    """The command in a thread (it runs its own event loop); output has stdout and stderr."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


def one_line(result: Result) -> str:
    assert "Traceback" not in result.output, result.output
    (line,) = result.output.strip().splitlines()
    return line


# ---- dlq replay, notify enable/disable -----------------------------------------------------------


async def test_dlq_replay_of_what_is_not_an_entry_id_is_one_line_and_exit_2(config_path: str) -> None:
    for bad in ("nosuchid", "1700000000000", "1-2-3", "99999999999999999999999-0", "1-x"):
        result = await cli("dlq", "replay", bad, "-c", config_path)
        assert result.exit_code == 2, (bad, result.output)
        assert one_line(result) == (f"error: {bad!r} is not a DLQ entry id (expected like 1700000000000-0; "
                                    "`statehook dlq ls` lists them)")


async def test_dlq_replay_of_an_absent_entry_is_one_line_and_exit_1(config_path: str) -> None:
    result = await cli("dlq", "replay", "1700000000000-0", "-c", config_path)
    assert result.exit_code == 1
    assert one_line(result) == "error: no such dead letter: 1700000000000-0"


async def test_notify_enable_and_disable_of_an_unknown_destination_exit_2_and_change_nothing(
    config_path: str, redis: aioredis.Redis
) -> None:
    for verb in ("enable", "disable", "test"):
        result = await cli("notify", verb, "nosuch", "-c", config_path)
        assert result.exit_code == 2, (verb, result.output)
        assert one_line(result) == "error: no destination named 'nosuch' (known: a, b)"
    assert await redis.hlen(keys.DISABLED) == 0


async def test_a_destination_that_left_the_config_can_still_be_enabled(
    config_path: str, redis: aioredis.Redis
) -> None:
    await redis.hset(keys.DISABLED, "gone", "410 Gone")
    result = await cli("notify", "enable", "gone", "-c", config_path)
    assert result.exit_code == 0 and "gone enabled" in result.output
    assert await redis.hlen(keys.DISABLED) == 0


async def test_dlq_ls_refuses_a_limit_below_1_in_one_line(config_path: str) -> None:
    """Redis refuses an XRANGE count below 1: that was a DataError traceback."""
    for limit in ("0", "-1"):
        result = await cli("dlq", "ls", "--limit", limit, "-c", config_path)
        assert result.exit_code == 2, (limit, result.output)
        assert one_line(result) == f"error: --limit: {limit} is below 1"
    result = await cli("dlq", "ls", "--limit", "1", "-c", config_path)
    assert result.exit_code == 0 and one_line(result) == "no dead letters", result.output


async def test_dlq_and_notify_say_redis_is_unavailable_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "down.toml"
    write_config(path, redis_url=f"redis://127.0.0.1:{free_port()}/0", providers={},
                 destinations={"a": {"kind": "console"}}, routes=[{"to": ["a"]}])
    started = time.monotonic()
    for args in (["dlq", "ls"], ["dlq", "replay", "--all"], ["dlq", "purge", "--yes"], ["notify", "status"],
                 ["notify", "enable", "a"], ["notify", "disable", "a"], ["notify", "attempts", "evt_1"],
                 ["notify", "test", "a"]):
        result = await cli(*args, "-c", str(path))
        assert result.exit_code == 1, (args, result.output)
        assert one_line(result) == "error: redis unavailable: ConnectionError"
    assert time.monotonic() - started < 20  # ARQ's pool tried for 30 s each


# ---- api ----------------------------------------------------------------------------------------------


async def test_api_port_out_of_range_is_a_usage_error_before_anything(config_path: str) -> None:
    for port in ("99999", "-1", "65536"):
        result = await cli("api", "--port", port, "-c", config_path)
        assert result.exit_code == 2, (port, result.output)
        assert one_line(result) == f"error: --port: {port} is not a port (0-65535)"


async def test_api_on_a_port_in_use_is_one_line_and_exit_1(config_path: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            STATEHOOK, "api", "-c", config_path, "--port", str(port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    err = stderr.decode()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and not stdout
    assert err.strip().splitlines()[-1] == f"error: cannot listen on 127.0.0.1:{port}: address already in use"


@pytest.mark.parametrize("args", [["api", "--port", "abc"], ["api", "--bogus"], ["events", "tail", "-n", "x"],
                                  ["show"], ["watch", "add", "rev", "--interval"]])
def test_a_usage_mistake_is_one_error_line_and_exit_2(args: list[str]) -> None:
    """The console script, not CliRunner: `main` turns click's usage box into one line."""
    import subprocess

    proc = subprocess.run([STATEHOOK, *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert not proc.stdout and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines


async def test_api_on_a_host_that_does_not_resolve_names_host(config_path: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        STATEHOOK, "api", "-c", config_path, "--host", "nosuch.invalid", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    err = stderr.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: --host: cannot resolve 'nosuch.invalid': ")


# ---- watch scan ---------------------------------------------------------------------------------------


async def test_watch_scan_with_a_wrong_key_registers_nothing(config_path: str, redis: aioredis.Redis) -> None:
    cases = {
        ("rev", "project_id=P1"): "error: -p project_id: not a key of rev's scan (it takes no parameters)",
        ("artistree", "project=P1"): (
            "error: -p project_id: required by artistree's scan (accepted: project_id, preview); "
            "-p project: not a key of artistree's scan (accepted: project_id, preview)"),
        ("sartiq", "org=O1"): "error: -p org: not a key of sartiq's scan (accepted: organization_id, owner_id)",
    }
    for (provider, param), expected in cases.items():
        for run in ("--run", "--no-run"):
            result = await cli("watch", "scan", provider, "-p", param, run, "-c", config_path)
            assert result.exit_code == 2, (provider, result.output)
            assert one_line(result) == expected
    result = await cli("watch", "scan", "artistree", "-p", "project_id=P1", "-p", "preview=maybe", "--no-run",
                       "-c", config_path)
    assert result.exit_code == 2
    assert one_line(result) == "error: -p preview: Input should be 'true', 'false', 'yes', 'no', '1' or '0'"
    assert await redis.hlen(keys.META) == 0 and await redis.zcard(keys.DUE) == 0

    result = await cli("watch", "scan", "artistree", "-p", "project_id=P1", "--no-run", "-c", config_path)
    assert result.exit_code == 0, result.output
    assert [k.decode() for k in await redis.hkeys(keys.META)] == ["artistree:scan:project_id=P1"]


def test_scan_filters_take_each_providers_own_keys() -> None:
    assert scan_problems("rev", {}) == []
    assert scan_problems("artistree", {"project_id": "All Projects", "preview": "true"}) == []
    assert scan_problems("sartiq", {"owner_id": "u1"}) == []
    assert scan_problems("artistree", {"project_id": " "}) == ["-p project_id: String should have at least 1 "
                                                                  "character"]


# ---- events tail ----------------------------------------------------------------------------------------


def at(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def events_of(rid: str, times: list[int]) -> list[Event]:
    return [replace(event("rev.order.state_changed", rid=rid, seq=n + 1, to=f"S{n + 1}"), detected_at=at(t),
                    id=f"evt_{rid}_{n + 1}")
            for n, t in enumerate(times)]


async def commit(redis: aioredis.Redis, events: list[Event]) -> None:
    """The events of one resource, committed as a poll commits them (outbox and timeline)."""
    ref = ResourceRef.parse(events[0].rkey)
    new = ResourceState("d" * 16, events[-1].seq, time.time())
    (ok,) = await Store(redis).commit([Commit(ref, None, new, pack_snapshot(b"{}"), KEEP_DUE, events)])
    assert ok


async def test_events_tail_reads_the_timelines_once_the_outbox_was_trimmed(
    config_path: str, redis: aioredis.Redis
) -> None:
    base = 1_790_000_000
    await commit(redis, events_of("A", [base + 1, base + 5, base + 9]))
    await commit(redis, events_of("B", [base + 2, base + 7]))
    await commit(redis, events_of("C", [base + 3]))
    await redis.xtrim(keys.OUTBOX, maxlen=0)  # what the dispatcher does with what it handed on

    result = await cli("events", "tail", "-n", "4", "-c", config_path)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == ("note: the outbox holds 0 event(s) (it keeps only what is not yet dispatched); "
                        "4 more from the resources' timelines")
    assert [line.split()[0] for line in lines[1:]] == [at(base + t) for t in (3, 5, 7, 9)]
    assert "rev:order:B" in lines[3] and "rev.order.state_changed S2" in lines[3]

    result = await cli("events", "tail", "-n", "10", "--json", "-c", config_path)
    assert result.exit_code == 0
    body = result.output[result.output.index("["):]
    records = orjson.loads(body)
    assert [r["id"] for r in records] == ["evt_A_1", "evt_B_1", "evt_C_1", "evt_A_2", "evt_B_2", "evt_A_3"]
    assert all(r["stream_id"] is None for r in records)
    assert "6 in all, fewer than the 10 asked for" in result.output

    # what is still in the outbox comes from it (with its data), the rest from the timelines
    await commit(redis, events_of("D", [base + 20]))
    result = await cli("events", "tail", "-n", "2", "--json", "-c", config_path)
    records = orjson.loads(result.output[result.output.index("["):])
    assert [(r["id"], r["stream_id"] is not None) for r in records] == [("evt_A_3", False), ("evt_D_1", True)]
    assert records[1]["data"]["to"] == "S1"


async def test_events_tail_does_not_read_the_timelines_of_too_many_resources(
    config_path: str, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("worker.cli_events.TIMELINE_SEARCH_LIMIT", 2)
    for rid, t in (("A", 1_790_000_001), ("B", 1_790_000_002), ("C", 1_790_000_003)):
        await commit(redis, events_of(rid, [t]))
    await redis.xtrim(keys.OUTBOX, maxlen=0)
    result = await cli("events", "tail", "--json", "-c", config_path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "note: the outbox holds 0 event(s) (it keeps only what is not yet dispatched); the timelines of more "
        "than 2 resources were not searched (statehook show RKEY shows one)", "[]"]


async def test_events_tail_json_is_an_empty_array_when_there_is_nothing(config_path: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        STATEHOOK, "events", "tail", "--json", "-c", config_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, stderr.decode()
    assert orjson.loads(stdout) == []
    assert stderr.decode().strip() == ("note: the outbox holds 0 event(s) (it keeps only what is not yet "
                                       "dispatched); 0 more from the resources' timelines; 0 in all, fewer than "
                                       "the 10 asked for")


async def test_events_tail_follow_stops_after_exactly_max_events(config_path: str, redis: aioredis.Redis) -> None:
    async def following() -> bool:
        return int((await redis.info("clients"))["blocked_clients"]) == 1

    for n, output in enumerate(("text", "json")):
        follower = asyncio.create_task(cli("events", "tail", "-f", "-n", "0", "--max-events", "2", "-c", config_path,
                                           *(["--json"] if output == "json" else [])))
        await wait_for(following, timeout=20, what="the follower reading the outbox")
        rid = f"R{n}"
        await commit(redis, events_of(rid, [1_790_000_001, 1_790_000_002, 1_790_000_003]))  # one read: all 3
        result = await asyncio.wait_for(follower, timeout=20)
        assert result.exit_code == 0, result.output
        if output == "json":
            assert [r["id"] for r in orjson.loads(result.output)] == [f"evt_{rid}_1", f"evt_{rid}_2"]
        else:
            lines = result.output.strip().splitlines()
            assert len(lines) == 2 and all(f"rev:order:{rid}" in line for line in lines), lines


async def test_events_tail_refuses_counts_below_zero_and_max_events_without_follow(config_path: str) -> None:
    for args, expected in ((["-n", "-1"], "error: --count: -1 is below 0"),
                           (["-f", "--max-events", "-2"], "error: --max-events: -2 is below 0"),
                           (["--max-events", "2"], "error: --max-events needs --follow (-f)")):
        result = await cli("events", "tail", *args, "-c", config_path)
        assert result.exit_code == 2, (args, result.output)
        assert one_line(result) == expected


# ---- show ----------------------------------------------------------------------------------------------


async def test_show_gives_the_due_time_not_the_lease_of_a_claim(config_path: str, redis: aioredis.Redis) -> None:
    rkey = "rev:order:TC1"
    store = Store(redis)
    await store.add_watches([(rkey, WatchMeta(interval=5.0, source="cli"))], due_at=time.time() + 3.4)
    result = await cli("show", rkey, "-c", config_path)
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first in (f"{rkey}  watched (cli), every 5s, next poll in 3s",
                     f"{rkey}  watched (cli), every 5s, next poll in 2s"), first

    # the scheduler claims it (as its tick does when it is due): its score becomes the lease
    await redis.zadd(keys.DUE, {rkey: time.time()})
    (claimed,) = await store.claim_due_times(time.time() + 1, 60.0, 100)
    assert claimed[0] == rkey
    result = await cli("show", rkey, "-c", config_path)
    first = result.output.splitlines()[0]
    assert first.startswith(f"{rkey}  watched (cli), every 5s, next poll due now (claimed for a poll; "
                            "the claim's lease runs out in "), first
    view = orjson.loads((await cli("show", rkey, "-c", config_path, "--json")).output)
    assert view["lease_until"] == view["due_at"]
    assert view["next_poll_at"] == pytest.approx(view["due_at"] - 60.0)


def test_next_poll_tells_a_lease_from_a_due_time() -> None:
    now = 1_000_000.0
    assert next_poll(now + 4, now, gap=5, lease=60) == (now + 4, None)
    assert next_poll(now + 61, now, gap=5, lease=60) == (now + 1, now + 61)
    assert next_poll(now - 3, now, gap=5, lease=60) == (now - 3, None)
    assert next_poll(None, now, gap=5, lease=60) == (None, None)
    # backoff after errors, a provider's pause or a long interval reach past the lease: a due time
    assert next_poll(now + 61, now, gap=schedule_gap(now, interval=5, state=None, errors=5, paused=0,
                                                     settings=None), lease=60) == (now + 61, None)
    assert next_poll(now + 61, now, gap=schedule_gap(now, interval=5, state=None, errors=0, paused=90,
                                                     settings=None), lease=60) == (now + 61, None)
    assert next_poll(now + 61, now, gap=300, lease=60) == (now + 61, None)


def test_schedule_gap_follows_the_providers_terminal_interval() -> None:
    from providers.rev import RevSettings

    settings = RevSettings(base_url=CLOSED, client_key="k", user_key="u", terminal_tail=86400,
                           terminal_interval=600)
    now = 1_000_000.0
    open_state = ResourceState("d", 3, now - 10, "", False)
    done_state = ResourceState("d", 3, now - 10, "", True)
    assert schedule_gap(now, interval=5, state=open_state, errors=0, paused=0, settings=settings) == 5
    assert schedule_gap(now, interval=5, state=done_state, errors=0, paused=0, settings=settings) == 600
    assert schedule_gap(now, interval=5, state=ResourceState("d", 3, now - 10), errors=0, paused=0,
                        settings=settings) == 600  # not recorded: either


# ---- the worker's shutdown -------------------------------------------------------------------------------


async def test_sigterm_is_logged_when_the_worker_starts_and_ends_its_shutdown(config_path: str) -> None:
    env = {**os.environ, "STATEHOOK_LOG_FORMAT": "text", "STATEHOOK_LOG_LEVEL": "info"}
    proc = await asyncio.create_subprocess_exec(
        STATEHOOK, "run", "-c", config_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        while not any(" started: " in line for line in seen):
            line = (await asyncio.wait_for(proc.stderr.readline(), timeout=30)).decode()
            assert line, "".join(seen)
            seen.append(line)
        proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(asyncio.gather(proc.stderr.read(), proc.wait()), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    tail = rest.decode()
    assert proc.returncode == 0, tail
    assert "statehook.worker: shutting down (SIGTERM): finishing 0 job(s) (up to 20s, then they are cancelled)" \
        in tail, tail
    assert "statehook.worker: shut down in " in tail and ": 0 job(s) finished, 0 cancelled" in tail, tail
    assert tail.index("shutting down (SIGTERM)") < tail.index("shut down in ")


# ---- --help ----------------------------------------------------------------------------------------------


def command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


def test_no_help_shows_a_type_on_a_flag() -> None:
    paths = list(command_paths(typer.main.get_command(app)))
    assert ("dlq", "replay") in paths and ("watch", "scan") in paths and ("check",) in paths
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        assert "--help" in result.output
