"""The operator's commands against real Redis: watch add/ls/rm, show, events tail, and the
long-running `api` and `simulate` as processes."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner, Result

from config import Config
from model.resources import ResourceRef
from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from store import keys
from store.snapshots import Store, WatchMeta
from tests import test_api
from tests.conftest import free_port, wait_for
from tests.kit import running_worker
from tests.test_api import api_config
from worker.cli import app

STATEHOOK = str(Path(sys.executable).with_name("statehook"))

# the simulator (Artistree and Rev) and the webhook receiver of the API tests
sim_providers = test_api.sim_providers


async def cli(*args: str, input: str | None = None) -> Result:
    """Run a command in a thread: the commands run their own event loop."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), input=input)


def path_of(config: Config) -> str:
    assert config.source is not None
    return str(config.source)


async def test_watch_add_ls_rm(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    c = path_of(api_config(tmp_path, redis_url, sim, receiver))
    result = await cli("watch", "add", "rev", "TC1", "TC2", "--interval", "5m", "-c", c)
    assert result.exit_code == 0, result.output
    assert "2 rev order(s) watched every 300s (2 new, 0 already watched)" in result.output
    result = await cli("watch", "add", "rev", "TC2", "-c", c, "--json")
    assert orjson.loads(result.output) == {"provider": "rev", "kind": "order", "interval": 60.0, "watched": 1,
                                           "added": 0}

    result = await cli("watch", "ls", "-c", c, "--json")
    listing = orjson.loads(result.output)
    assert listing["total"] == 2
    assert [(w["rkey"], w["source"]) for w in listing["watches"]] == [("rev:order:TC1", "cli"),
                                                                       ("rev:order:TC2", "cli")]
    result = await cli("watch", "ls", "-c", c, "--provider", "rev")
    assert "rev:order:TC1" in result.output and "2 watch(es)" in result.output

    result = await cli("watch", "rm", "rev", "TC1", "-c", c)
    assert result.exit_code == 0 and "1 of 1 watch(es) removed" in result.output
    assert [k.decode() for k in await redis.hkeys(keys.META)] == ["rev:order:TC2"]

    result = await cli("watch", "add", "nope", "X", "-c", c)
    assert result.exit_code == 2
    assert result.output == "error: unknown provider 'nope' (known: artistree, deepomatic, rev, sartiq)\n"
    result = await cli("watch", "add", "rev", "-c", c)
    assert result.exit_code == 2 and "no ids given" in result.output
    result = await cli("watch", "add", "rev", "TC 3", "-c", c)
    assert result.exit_code == 2 and "invalid id(s): 'TC 3'" in result.output
    result = await cli("watch", "add", "rev", "TC4", "--interval", "soon", "-c", c)
    assert result.exit_code == 2 and "interval" in result.output
    result = await cli("watch", "add", "rev", "TC5\n", "-c", c)  # re's `$` matches before a final newline
    assert result.exit_code == 2 and "invalid id(s): 'TC5\\n'" in result.output, result.output
    result = await cli("watch", "add", "rev", "TC6", "--interval", "1h30m", "-c", c, "--json")  # the file's forms
    assert result.exit_code == 0 and orjson.loads(result.output)["interval"] == 5400.0, result.output
    result = await cli("watch", "add", "rev", "TC7", "--stall-after", "In Progress=2h", "--stall-after", "*=0",
                       "-c", c)
    assert result.exit_code == 0, result.output
    meta = WatchMeta.from_json(await redis.hget(keys.META, "rev:order:TC7"))  # type: ignore[misc]
    assert meta.stall_after == {"In Progress": 7200.0, "*": 0.0}
    result = await cli("watch", "add", "rev", "TC8", "--stall-after", "-1h", "-c", c)
    assert result.exit_code == 2 and "stall_after" in result.output and not await redis.hexists(  # type: ignore[misc]
        keys.META, "rev:order:TC8")


async def test_watch_add_from_a_file_registers_thousands(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    c = path_of(api_config(tmp_path, redis_url, sim, receiver))
    ids = tmp_path / "ids.txt"
    ids.write_text("# orders placed today\n" + "\n".join(f"TC{n}" for n in range(25_000)) + "\n\n")
    result = await cli("watch", "add", "rev", "--from-file", str(ids), "--interval", "1h", "-c", c, "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["added"] == 25_000
    assert await redis.hlen(keys.META) == 25_000
    result = await cli("watch", "add", "rev", "--from-file", "-", "-c", c, input="TC1\nTC99999\n")
    assert "(1 new, 1 already watched)" in result.output


async def test_show_prints_the_snapshot_and_the_timeline_of_events_and_deliveries(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    oid = sim["artistree"].add_order(state="In Progress", title="Poster v3")["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    config = api_config(tmp_path, redis_url, sim, receiver)
    receiver.script = [500]
    async with running_worker(config):
        await Store(redis).add_watches([(rkey, WatchMeta(interval=0.2, source="cli"))])
        await wait_for(lambda: redis.hexists(keys.STATE, rkey), what="baseline")
        sim["artistree"].set_state(oid, "Action Required")
        await wait_for(lambda: len(receiver.delivered) == 1, what="delivery after a retry")

        async def both_attempts_recorded() -> bool:
            return int(await redis.llen(keys.attempts(receiver.delivered[0].event["id"]))) == 2

        await wait_for(both_attempts_recorded, what="both attempts recorded")
    result = await cli("show", rkey, "-c", path_of(config))
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"{rkey}  watched (cli), every 0.2s" in out
    assert "Poster v3: Action Required" in out
    assert "order_state: Action Required" in out
    assert "critical artistree.order.state_changed" in out
    assert "→ hook  attempt 1  500" in out and "failed: HTTP 500" in out
    assert "→ hook  attempt 2  204" in out

    result = await cli("show", rkey, "-c", path_of(config), "--json")
    view = orjson.loads(result.output)
    assert view["snapshot"]["order_state"] == "Action Required"
    assert [d["ok"] for d in view["history"][0]["deliveries"]] == [False, True]
    result = await cli("show", "artistree:order:nope", "-c", path_of(config))
    assert result.exit_code == 1 and "never polled" in result.output


async def test_events_tail_prints_recent_events_and_follows_new_ones(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    a = sim["artistree"].add_order(state="In Progress")["order_id"]
    b = sim["artistree"].add_order(state="In Progress")["order_id"]
    config = api_config(tmp_path, redis_url, sim, receiver)
    c = path_of(config)
    rkeys = [ResourceRef("artistree", "order", x).key for x in (a, b)]
    async with running_worker(config):
        await Store(redis).add_watches([(k, WatchMeta(interval=0.2)) for k in rkeys])
        await wait_for(lambda: redis.hexists(keys.STATE, rkeys[1]), what="baselines")
        await wait_for(lambda: redis.hexists(keys.STATE, rkeys[0]), what="baselines")
        sim["artistree"].set_state(a, "Failed")
        await wait_for(lambda: len(receiver.delivered) == 1)
        result = await cli("events", "tail", "-n", "5", "-c", c)
        assert result.exit_code == 0
        assert "artistree.order.state_changed" in result.output and rkeys[0] in result.output

        # -f from the newest event on: the one that follows is printed, then it stops
        follower = asyncio.create_task(cli("events", "tail", "-f", "-n", "1", "--max-events", "1", "--json",
                                           "-c", c))
        sim["artistree"].set_state(b, "Human Certified")
        result = await asyncio.wait_for(follower, timeout=20)
    # one JSON array, an event a line (-f streams it)
    lines = result.output.splitlines()
    assert lines[0].startswith("[{") and lines[1].startswith(",{") and lines[2] == "]"
    records = orjson.loads(result.output)
    assert [(x["resource"]["key"], x["data"]["to"]) for x in records] == [(rkeys[0], "Failed"), (rkeys[1],
                                                                                               "Human Certified")]
    assert all(x["stream_id"] for x in records)


async def test_the_api_command_serves_until_sigterm(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        STATEHOOK, "api", "-c", path_of(config), "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            async def answers() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        return resp.status == 503 and (await resp.json())["reason"] == "no worker heartbeat"
                except aiohttp.ClientConnectionError:
                    return False

            await wait_for(answers, timeout=20, what="the API up")
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()
    assert "api listening on" in stderr.decode()


async def test_simulate_runs_the_simulator_on_its_own() -> None:
    proc = await asyncio.create_subprocess_exec(
        STATEHOOK, "simulate", "--port", "0", "--orders", "2", "--providers", "artistree,rev",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
        assert first.startswith("simulator listening on http://127.0.0.1:")
        base = first.split(" on ", 1)[1].strip()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/_sim/artistree/stats") as resp:
                assert resp.status == 200 and (await resp.json())["orders"] == 2
            async with http.get(f"{base}/_sim/rev/orders") as resp:
                assert resp.status == 200
            async with http.get(f"{base}/rev/api/v1/orders") as resp:
                assert resp.status == 401  # the stand-in wants Rev's keys, like Rev
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0


async def test_healthcheck_probes_this_hosts_worker_and_the_api(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    from tests.test_api import serving

    config = api_config(tmp_path, redis_url, sim, receiver, worker={"health_interval": "0.5s"})
    c = path_of(config)
    result = await cli("healthcheck", "--role", "worker", "-c", c)
    assert result.exit_code == 1 and "no fresh worker heartbeat" in result.output
    async with running_worker(config), serving(config) as (url, _):
        async def healthy() -> bool:
            return (await cli("healthcheck", "--role", "worker", "-c", c)).exit_code == 0

        await wait_for(healthy, what="a fresh heartbeat on this host")
        result = await cli("healthcheck", "--role", "api", "--url", url, "-c", c)
        assert result.exit_code == 0 and result.output.strip() == "api: ok"
    result = await cli("healthcheck", "--role", "api", "--url", url, "-c", c)
    assert result.exit_code == 1 and "not answering" in result.output


async def test_watch_scan_runs_the_first_scan_here_and_leaves_the_next_to_the_workers(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    numbers = [sim["rev"].add_order() for _ in range(60)]  # three pages of 25
    c = path_of(api_config(tmp_path, redis_url, sim, receiver))
    started = time.time()
    result = await cli("watch", "scan", "rev", "--interval", "1h", "-c", c, "--json")
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    assert report["rkey"] == "rev:scan:all" and report["added"] == 1
    assert (report["pages"], report["items"], report["outcomes"]) == (3, 60, {"baseline": 60})
    states = await redis.hmget(keys.STATE, [ResourceRef("rev", "order", n).key for n in numbers])
    assert all(states)
    due = await redis.zscore(keys.DUE, "rev:scan:all")
    assert started + 3600 - 5 < due < time.time() + 3600 + 5
    assert (await redis.hget(keys.STATS, "polls:rev:baseline")) == b"60"

    result = await cli("watch", "scan", "rev", "-c", c)
    assert "rev:scan:all: already watched" in result.output
    assert "first scan: 3 page(s), 60 resource(s): unchanged=60" in result.output
    result = await cli("watch", "scan", "rev", "--param", "nonsense", "-c", c)
    assert result.exit_code == 2 and "key=value" in result.output


async def test_a_scan_without_parameters_from_the_config_file_is_polled(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    """Rev's scan takes no parameters (`scan = {}`): its watch key is `rev:scan:all`."""
    from tests.kit import write_config
    from tests.test_api import provider_blocks

    number = sim["rev"].add_order()
    config = write_config(
        tmp_path / "scan.toml", redis_url=redis_url, providers={"rev": provider_blocks(sim)["rev"]},
        watches=[{"provider": "rev", "scan": {}, "interval": "1h"}],
        destinations={"console": {"kind": "console"}}, routes=[{"to": ["console"]}],
    )
    async with running_worker(config):
        await wait_for(lambda: redis.hexists(keys.STATE, ResourceRef("rev", "order", number).key),
                       what="the scanned order's baseline")
    assert await redis.hexists(keys.META, "rev:scan:all")


# ---- poison input, unreadable records, Redis unavailable ------------------------------------------


async def test_an_unbounded_interval_is_one_error_line_and_exit_2(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver
) -> None:
    c = path_of(api_config(tmp_path, redis_url, sim, receiver))
    for interval in ("inf", "nan", "1e308", "1ms", "-5", "31d"):
        result = await cli("watch", "add", "rev", "TC1", "--interval", interval, "-c", c)
        assert result.exit_code == 2, (interval, result.output)
        (line,) = result.output.strip().splitlines()
        assert line.startswith("error: interval: ") and "duration" in line, line
        result = await cli("watch", "scan", "artistree", "-p", "project_id=P1", "--interval", interval,
                           "--no-run", "-c", c)
        assert result.exit_code == 2, (interval, result.output)
        (line,) = result.output.strip().splitlines()
        assert line.startswith("error: interval: ") and "duration" in line, line
    assert await redis.hlen(keys.META) == 0


async def test_watch_ls_and_show_skip_what_cannot_be_read_and_name_its_key(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.test_api_degraded import BAD_STATE, GOOD, NOT_JSON, NULL_INTERVAL, poison

    await poison(redis)
    c = path_of(api_config(tmp_path, redis_url, sim, receiver))
    caplog.set_level(logging.WARNING)
    result = await cli("watch", "ls", "-c", c, "--json")
    assert result.exit_code == 0, result.output
    assert sorted(w["rkey"] for w in orjson.loads(result.output)["watches"]) == [BAD_STATE, GOOD]
    result = await cli("watch", "ls", "-c", c)
    assert result.exit_code == 0 and "2 watch(es)" in result.output, result.output
    for rkey in (NOT_JSON, NULL_INTERVAL):
        assert any(f"{keys.META}[{rkey}]" in r.getMessage() for r in caplog.records), rkey

    result = await cli("show", BAD_STATE, "-c", c)
    assert result.exit_code == 0, result.output
    assert "watched (api), every 60s" in result.output and "timeline (1 event(s)" in result.output
    result = await cli("show", NULL_INTERVAL, "-c", c, "--json")
    assert result.exit_code == 0 and orjson.loads(result.output)["watch"] is None
    assert any(keys.snapshot(BAD_STATE) in r.getMessage() for r in caplog.records)

    result = await cli("events", "tail", "-n", "5", "-c", c)
    assert result.exit_code == 0, result.output
    assert f"warning: unreadable record skipped: {keys.OUTBOX}[" in result.output
    assert "rev.order.state_changed" in result.output


async def test_commands_say_redis_is_unavailable_in_one_line(
    tmp_path: Path, sim: Simulator, receiver: WebhookReceiver
) -> None:
    c = path_of(api_config(tmp_path, f"redis://127.0.0.1:{free_port()}/0", sim, receiver))
    for args in (["watch", "ls"], ["watch", "add", "rev", "TC1"], ["show", "rev:order:TC1"]):
        result = await cli(*args, "-c", c)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.strip() == "error: redis unavailable: ConnectionError", result.output


async def test_the_api_command_listens_while_redis_is_down(
    tmp_path: Path, sim: Simulator, receiver: WebhookReceiver
) -> None:
    """`statehook api` did not listen at all while Redis was down (create_pool's retries)."""
    config = api_config(tmp_path, f"redis://127.0.0.1:{free_port()}/0", sim, receiver)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        STATEHOOK, "api", "-c", path_of(config), "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            async def unavailable() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/v1/watches", headers=test_api.AUTH) as resp:
                        return resp.status == 503 and (await resp.json()) == {
                            "error": "redis unavailable: ConnectionError"}
                except aiohttp.ClientConnectionError:
                    return False

            await wait_for(unavailable, timeout=20, what="the API listening and answering 503")
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()
    assert "Redis unavailable (ConnectionError): answering 503" in stderr.decode()
