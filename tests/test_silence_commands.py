"""`statehook silence …` and /v1/silences against a real Redis whose last 24 h of events a
dispatcher routed: the preview lists what a silence would mute (per event and destination)
and stores nothing; a silence that mutes every recent event, or has no matcher, needs
--force / "force": true; bad matchers and times are one-line refusals; ls, extend, expire;
and a silence made through the API mutes in a running dispatcher."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis
from typer.testing import CliRunner, Result

from config import Config, load_config
from core.silences import LATEST
from model.resources import ResourceRef
from model.routes import Route
from model.silences import Silence, SilenceMatch
from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from store import keys
from store.silences import SilenceStore
from tests import test_api
from tests.conftest import wait_for
from tests.kit import running_worker, toml_value, write_config
from tests.test_api import API_TOKEN, AUTH, call, serving
from tests.test_routes import deliveries, event, publish
from worker.cli import app
from worker.queue import dispatcher_for

ROUTES = [Route.model_validate({"to": ["slack", "mail"]})]


def silence_config(tmp_path: Path, redis_url: str) -> Config:
    path = tmp_path / "statehook.toml"
    write_config(path, redis_url=redis_url, providers={},
                 destinations={"slack": {"kind": "console"}, "mail": {"kind": "console"}},
                 routes=[{"to": ["slack", "mail"]}])
    extra = f'\n\n[silences]\nmax_duration = "7d"\n\n[api]\ntoken = {toml_value(API_TOKEN)}\n'
    path.write_text(path.read_text() + extra)
    return load_config(path)


async def cli(config: Config, *args: str) -> Result:
    assert config.source is not None
    return await asyncio.to_thread(CliRunner().invoke, app, [*args, "--config", str(config.source)])


async def recent_events(arq: ArqRedis) -> None:
    """Three events of the last minutes, routed to slack and mail."""
    d = dispatcher_for(arq, ROUTES, "seed", enabled_destinations={"slack", "mail"})
    await d.ensure_group()
    await publish(arq, event("artistree.order.state_changed", "critical", to="Failed", rid="ord-1"),
                  event("artistree.order.reviewed", "warning", rid="ord-2"),
                  event("rev.order.state_changed", "info", to="Complete", rid="TC1"))
    await d.step()


@pytest.fixture
def config(tmp_path: Path, redis_url: str) -> Config:
    return silence_config(tmp_path, redis_url)


async def test_the_cli_preview_lists_what_it_would_mute_and_stores_nothing(config: Config, arq: ArqRedis) -> None:
    await recent_events(arq)
    shown = await cli(config, "silence", "add", "--match", "provider=artistree", "--match", "state=failed",
                      "--ends", "2h", "--preview")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == ("would have muted 2 deliveries of 3 events in the last 24 h (1 on every destination they "
                        "went to):")
    assert [line.split()[-1] for line in lines[1:3]] == ["slack", "mail"]
    assert all("artistree:order:ord-1  artistree.order.state_changed → Failed  [critical]" in x for x in lines[1:3])
    assert (await cli(config, "silence", "ls")).output.strip() == "no pending or active silences"


async def test_a_cli_silence_that_mutes_everything_needs_force(config: Config, arq: ArqRedis) -> None:
    await recent_events(arq)
    broad = ["silence", "add", "--match", "severity=info", "--match", "severity=warning", "--match",
             "severity=critical", "--ends", "2h"]
    refused = await cli(config, *broad)
    assert refused.exit_code == 1
    assert refused.output.strip() == ("error: refused: it matches every event of the last 24 h (3) on every "
                                      "destination they went to; add a matcher, or pass --force")
    empty = await cli(config, "silence", "add", "--ends", "2h")
    assert empty.exit_code == 1 and "it has no matcher, so it mutes every event on every destination" in empty.output
    preview = await cli(config, *broad, "--preview")
    assert preview.exit_code == 0 and "needs --force: it matches every event" in preview.output
    made = await cli(config, *broad, "--force", "--author", "ann", "-m", "migration")
    assert made.exit_code == 0, made.output
    assert made.output.startswith("created sil_") and " active " in made.output and "by ann: migration" in made.output


@pytest.mark.parametrize(("args", "message"), [
    (["--match", "colour=red", "--ends", "2h"], "error: --match: unknown matcher key 'colour' (known: provider, "
                                                "type, rkey, id, state, severity, tags, project, destination)"),
    (["--match", "provider", "--ends", "2h"], "error: --match: matcher 'provider' is not key=value"),
    (["--match", "severity=urgent", "--ends", "2h"], "error: --match: severity.0: Input should be 'info', "
                                                      "'warning' or 'critical'"),
    (["--match", "provider=rev", "--ends", "2000-01-01T00:00:00Z"],
     "error: cannot create the silence: its end is in the past"),
    (["--match", "provider=rev", "--ends", "8d"],
     "error: cannot create the silence: it would last longer than the maximum of 7d (silences.max_duration)"),
    (["--match", "provider=rev", "--ends", "soon"],
     "error: --ends: 'soon' is neither a duration (2h, 30m, 1d) nor an ISO 8601 time"),
    (["--match", "provider=rev", "--ends", "2h", "--starts", "3h"],
     "error: cannot create the silence: its end is not after its start"),
    (["--match", "destination=slak", "--ends", "30m"],  # a typo muted nothing, silently
     "error: cannot create the silence: no destination named 'slak' (configured: mail, slack)"),
])
async def test_bad_cli_silences_are_one_line_refusals(config: Config, args: list[str], message: str) -> None:
    result = await cli(config, "silence", "add", *args)
    assert result.exit_code in (1, 2)
    assert result.output.strip() == message


async def test_cli_ls_extend_and_expire(config: Config, arq: ArqRedis) -> None:
    made = await cli(config, "silence", "add", "--match", "rkey=rev:order:TC1", "--ends", "1h", "--json")
    assert made.exit_code == 0, made.output
    import orjson

    silence = orjson.loads(made.output)
    assert silence["state"] == "active" and silence["match"] == {"rkey": ["rev:order:TC1"]}
    sid = silence["id"]
    assert (await cli(config, "silence", "ls")).output.startswith(f"{sid}  active ")
    longer = await cli(config, "silence", "extend", sid, "--ends", "3h", "--json")
    assert orjson.loads(longer.output)["ends_at"] > silence["ends_at"]
    too_long = await cli(config, "silence", "extend", sid, "--ends", "8d")
    assert too_long.exit_code == 1 and "maximum of 7d" in too_long.output
    gone = await cli(config, "silence", "expire", sid)
    assert gone.exit_code == 0 and gone.output.startswith(f"expired {sid}  expired ")
    assert (await cli(config, "silence", "ls")).output.strip() == "no pending or active silences"
    assert (await cli(config, "silence", "ls", "--all")).output.startswith(f"{sid}  expired ")
    again = await cli(config, "silence", "extend", sid, "--ends", "1h")
    assert again.output.strip() == f"error: silence {sid} has expired: create a new one"
    unknown = await cli(config, "silence", "expire", "sil_0000000000000000")
    assert unknown.exit_code == 1 and unknown.output.strip() == "error: no silence 'sil_0000000000000000'"


# ---- the API ------------------------------------------------------------------------------------


def in_hours(h: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(time.time() + h * 3600, tz=UTC).isoformat()


async def test_the_api_previews_refuses_and_creates(config: Config, arq: ArqRedis) -> None:
    await recent_events(arq)
    async with serving(config) as (_, http):
        body: dict[str, Any] = {"match": {"provider": ["artistree"], "destination": ["mail"]}, "duration": "2h",
                                "dry_run": True}
        status, dry = await call(http, "POST", "/v1/silences", json=body, headers=AUTH)
        assert status == 200 and dry["created"] is False and dry["silence"]["id"] is None
        assert [(d["rkey"], d["destination"]) for d in dry["preview"]["deliveries"]] == [
            ("artistree:order:ord-1", "mail"), ("artistree:order:ord-2", "mail")]
        assert dry["preview"]["events"] == 3 and dry["preview"]["needs_force"] is None
        assert (await call(http, "GET", "/v1/silences", headers=AUTH))[1] == {"silences": []}

        status, refused = await call(http, "POST", "/v1/silences", json={"ends_at": in_hours(1)}, headers=AUTH)
        assert status == 409
        assert refused["error"] == ('refused: it has no matcher, so it mutes every event on every destination; '
                                    'add a matcher, or send "force": true')
        everything = {"match": {"destination": ["slack", "mail"]}, "duration": 3600}
        status, refused = await call(http, "POST", "/v1/silences", json=everything, headers=AUTH)
        assert status == 409 and "matches every event of the last 24 h (3)" in refused["error"]
        status, made = await call(http, "POST", "/v1/silences", json={**everything, "force": True,
                                                                      "author": "ann"}, headers=AUTH)
        assert status == 201 and made["created"] and made["silence"]["state"] == "active"
        assert made["preview"]["needs_force"].startswith("it matches every event")
        sid = made["silence"]["id"]

        status, created = await call(http, "POST", "/v1/silences", json={**body, "dry_run": False}, headers=AUTH)
        assert status == 201
        status, listed = await call(http, "GET", "/v1/silences?state=active", headers=AUTH)
        assert [s["id"] for s in listed["silences"]] == [sid, created["silence"]["id"]]
        assert (await call(http, "GET", f"/v1/silences/{sid}", headers=AUTH))[1]["author"] == "ann"
        status, extended = await call(http, "POST", f"/v1/silences/{sid}/extend", json={"duration": "3h"},
                                      headers=AUTH)
        assert status == 200 and extended["ends_at"] > made["silence"]["ends_at"]
        status, expired = await call(http, "POST", f"/v1/silences/{sid}/expire", headers=AUTH)
        assert status == 200 and expired["state"] == "expired"
        status, listed = await call(http, "GET", "/v1/silences?state=expired", headers=AUTH)
        assert [s["id"] for s in listed["silences"]] == [sid]


@pytest.mark.parametrize(("method", "path", "body", "status", "reason"), [
    ("POST", "/v1/silences", {"match": {"colour": ["red"]}, "duration": "1h"}, 400,
     "invalid silence: match.colour: Extra inputs are not permitted"),
    ("POST", "/v1/silences", {"match": {"provider": ["rev"]}}, 400,
     "invalid silence: body: give the end as ends_at or as duration (one of them)"),
    ("POST", "/v1/silences", {"match": {"provider": "rev"}, "duration": "1h"}, 400,
     "invalid silence: match.provider: Input should be a valid list"),
    ("POST", "/v1/silences", {"match": {"provider": ["rev"]}, "ends_at": "2001-01-01T00:00:00Z"}, 409,
     "cannot create the silence: its end is in the past"),
    ("POST", "/v1/silences", {"match": {"provider": ["rev"]}, "ends_at": "9999-12-31T23:59:59-23:59"}, 400,
     "cannot create the silence: its start or end is after 9999-12-31T23:59:59Z, the latest time a silence can "
     "have"),  # told first: it was a 409 "longer than the maximum" (found by a fresh-user trial)
    ("POST", "/v1/silences", {"match": {"provider": ["rev"]}, "duration": "8d"}, 409,
     "cannot create the silence: it would last longer than the maximum of 7d (silences.max_duration)"),
    ("POST", "/v1/silences", {"match": {"provider": ["rev"]}, "starts_at": "9999-12-31T23:00:00-23:59",
                              "ends_at": "9999-12-31T23:59:00-23:59"}, 400,
     "cannot create the silence: its start or end is after 9999-12-31T23:59:59Z, the latest time a silence can have"),
    ("POST", "/v1/silences", {"match": {"destination": ["slack", "pager"]}, "duration": "1h"}, 409,
     "cannot create the silence: no destination named 'pager' (configured: mail, slack)"),
    ("POST", "/v1/silences", {"match": {"provider": ["rev"]}, "duration": "1h", "force": "yes"}, 400,
     "invalid silence: force: Input should be a valid boolean"),
    ("GET", "/v1/silences/sil_0000000000000000", None, 404, "no silence sil_0000000000000000"),
    ("GET", "/v1/silences/nope", None, 404, "no silence nope"),
    ("GET", f"/v1/silences/sil_{'0' * 70}", None, 400,
     "invalid silence id: id: String should have at most 64 characters"),
    ("POST", "/v1/silences/sil_0000000000000000/expire", None, 404, "no silence 'sil_0000000000000000'"),
    ("POST", "/v1/silences/sil_0000000000000000/extend", {"duration": "1h"}, 404,
     "no silence 'sil_0000000000000000'"),
    ("GET", "/v1/silences?state=muted", None, 400, "invalid query: state: Input should be 'pending', 'active' "
                                                   "or 'expired'"),
])
async def test_bad_api_requests_are_refused_with_a_reason(config: Config, method: str, path: str,
                                                          body: dict[str, Any] | None, status: int,
                                                          reason: str) -> None:
    async with serving(config) as (_, http):
        got, answer = await call(http, method, path, json=body, headers=AUTH)
        assert (got, answer["error"]) == (status, reason)
        assert (await call(http, method, path, json=body))[0] == 401  # the bearer token, like every management call


async def test_a_stored_silence_past_the_last_time_there_is_is_listed_at_it_and_can_be_expired(
    config: Config, redis: aioredis.Redis
) -> None:
    now = time.time()
    far = Silence(id="sil_00000000000000ff", match=SilenceMatch(provider=["rev"]), starts_at=LATEST + 86400,
                  ends_at=LATEST + 2 * 86400, author="ops", comment="", created_at=now)
    await SilenceStore(redis).put(far, now)  # as one created before the API refused it
    async with serving(config) as (_, http):
        status, listed = await call(http, "GET", "/v1/silences", headers=AUTH)
        assert status == 200 and [s["id"] for s in listed["silences"]] == [far.id]
        shown = listed["silences"][0]
        assert (shown["state"], shown["starts_at"], shown["ends_at"]) == (
            "pending", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z")
        assert (await call(http, "GET", f"/v1/silences/{far.id}", headers=AUTH))[0] == 200
        status, expired = await call(http, "POST", f"/v1/silences/{far.id}/expire", headers=AUTH)
        assert status == 200 and expired["state"] == "expired"
    stored = await SilenceStore(redis).get(far.id)
    assert stored is not None and stored.ends_at <= time.time()


async def test_a_silence_made_through_the_api_mutes_in_the_dispatcher(config: Config, arq: ArqRedis) -> None:
    d = dispatcher_for(arq, ROUTES, "w", enabled_destinations={"slack", "mail"})
    await d.ensure_group()
    async with serving(config) as (_, http):
        status, _ = await call(http, "POST", "/v1/silences",
                               json={"match": {"rkey": ["rev:order:TC1"], "destination": ["slack"]},
                                     "duration": "10m"}, headers=AUTH)
        assert status == 201
    await publish(arq, event("rev.order.state_changed", "critical", to="Failed", rid="TC1"))
    await d.step()
    assert [dest for dest, _ in await deliveries(arq)] == ["mail"]


# ---- end to end: a worker polling the simulator -----------------------------------------------

sim_providers = test_api.sim_providers


async def test_a_worker_polling_the_simulator_mutes_what_a_silence_matches(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    quiet, loud = (sim["artistree"].add_order(state="In Progress", title=t)["order_id"] for t in ("quiet", "loud"))
    quiet_rkey = ResourceRef("artistree", "order", quiet).key
    config = test_api.api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (_, http), running_worker(config):
        status, made = await call(http, "POST", "/v1/silences", headers=AUTH, json={
            "match": {"rkey": [quiet_rkey], "destination": ["hook"]}, "duration": "10m", "comment": "known"})
        assert status == 201
        status, _ = await call(http, "POST", "/v1/watches", headers=AUTH,
                               json={"provider": "artistree", "ids": [quiet, loud], "interval": "0.2s"})
        assert status == 201
        for oid in (quiet, loud):
            await wait_for(lambda oid=oid: redis.hexists(keys.STATE, ResourceRef("artistree", "order", oid).key),
                           what="baseline polls")
        sim["artistree"].set_state(quiet, "Failed")
        sim["artistree"].set_state(loud, "Failed")
        await wait_for(lambda: len(receiver.delivered) >= 1, what="the loud order's delivery")

        async def muted_in_timeline() -> bool:
            _, view = await call(http, "GET", f"/v1/resources/{quiet_rkey}", headers=AUTH)
            return any(e["type"] == "silenced" for e in view["history"])

        await wait_for(muted_in_timeline, what="the quiet order's silenced note")
        _, view = await call(http, "GET", f"/v1/resources/{quiet_rkey}", headers=AUTH)
        note = next(e for e in view["history"] if e["type"] == "silenced")
        assert note["note"] == {"silence": made["silence"]["id"], "destination": "hook"}
        status, metrics = await call(http, "GET", "/metrics")
        assert 'statehook_silenced_total{destination="hook"} 1.0' in metrics
    assert [d.event["resource"]["id"] for d in receiver.delivered] == [loud]
