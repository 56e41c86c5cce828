"""The HTTP API end to end on loopback: real Redis, a real worker, the simulator, a webhook
receiver, and the API served on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from config import Config, load_config
from model.resources import ResourceRef
from simulator.artistree import ArtistreeSim
from simulator.core import SimProvider, Simulator
from simulator.receivers import WebhookReceiver
from simulator.rev import RevSim
from store import keys, reads
from store.snapshots import Store, WatchMeta
from tests.conftest import wait_for
from tests.kit import WHSEC, running_worker, toml_value, write_config
from worker.api import openapi_document, rev_order_number, start_api

API_TOKEN = "api-token-7d1f0c9a2b3e4d5f"
HOOK_TOKEN = "hook-token-0a9b8c7d6e5f4a3b"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


# ---- building blocks (the other API-facing test modules use them too) -------------------


@pytest.fixture
def sim_providers() -> list[SimProvider]:
    return [ArtistreeSim(), RevSim()]


def provider_blocks(sim: Simulator) -> dict[str, dict[str, Any]]:
    return {
        "artistree": {"base_url": sim.url("artistree"), "token_url": sim.url("artistree") + "/oauth2/token",
                      "client_id": "sim-client", "client_secret": "sim-secret"},
        "rev": {"base_url": sim.url("rev"), "client_key": "sim-client-key", "user_key": "sim-user-key"},
    }


def api_config(
    tmp_path: Path,
    redis_url: str,
    sim: Simulator,
    receiver: WebhookReceiver,
    *,
    token: str | None = API_TOKEN,
    hook_tokens: dict[str, str] | None = None,
    worker: dict[str, Any] | None = None,
    providers: dict[str, dict[str, Any]] | None = None,
    destination: dict[str, Any] | None = None,
) -> Config:
    """A config file with the simulated providers, a webhook destination and an [api] table."""
    path = tmp_path / "statehook.toml"
    write_config(
        path,
        redis_url=redis_url,
        providers=providers if providers is not None else provider_blocks(sim),
        destinations={"hook": destination or {"kind": "webhook", "url": receiver.url, "secret": WHSEC,
                                               "retry_schedule": [0.05, 0.05], "jitter": 0.0}},
        routes=[{"to": ["hook"]}],
        worker={"health_interval": "1s", **(worker or {})},
    )
    lines = ["", "[api]"]
    if token is not None:
        lines.append(f"token = {toml_value(token)}")
    hooks = {"rev": HOOK_TOKEN} if hook_tokens is None else hook_tokens
    if hooks:
        lines.append(f"hook_tokens = {toml_value(hooks)}")
    path.write_text(path.read_text() + "\n".join(lines) + "\n")
    return load_config(path)


@contextlib.asynccontextmanager
async def serving(config: Config) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """The API on a free loopback port, and a client session."""
    runner, url = await start_api(config, host="127.0.0.1", port=0)
    try:
        async with aiohttp.ClientSession(base_url=url) as session:
            yield url, session
    finally:
        await runner.cleanup()


async def call(session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, path, **kwargs) as resp:
        body = await resp.json(content_type=None) if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


async def raw_request(url: str, method: str, path: str, headers: list[tuple[str, bytes]],
                      body: bytes = b"") -> tuple[int, bytes]:
    """A request of exactly these bytes (what aiohttp's client will not send: a header that
    is not UTF-8, a charset that does not exist); the answer's status and body."""
    parts = urlsplit(url)
    lines = [f"{method} {path} HTTP/1.1".encode(), f"Host: {parts.netloc}".encode(), b"Connection: close",
             f"Content-Length: {len(body)}".encode(), *(name.encode() + b": " + value for name, value in headers)]
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, content = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), content


# ---- auth -------------------------------------------------------------------------------------


async def test_management_calls_are_refused_without_the_bearer_token(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    body = {"provider": "rev", "ids": ["TC1"]}
    async with serving(config) as (_, http):
        for method, path in [("GET", "/v1/watches"), ("POST", "/v1/watches"), ("DELETE", "/v1/watches"),
                             ("GET", "/v1/events"), ("GET", "/v1/resources/rev:order:TC1")]:
            status, answer = await call(http, method, path, json=body)
            assert status == 401, (method, path)
            assert "missing" in answer["error"]
            status, answer = await call(http, method, path, json=body,
                                        headers={"Authorization": "Bearer " + API_TOKEN[:-1] + "x"})
            assert (status, answer["error"]) == (401, "invalid token"), (method, path)
        status, _ = await call(http, "GET", "/v1/watches", headers={"Authorization": f"Token {API_TOKEN}"})
        assert status == 401
        status, _ = await call(http, "GET", "/v1/watches", headers=AUTH)
        assert status == 200
        # health, metrics and the API's description are open
        for path in ("/healthz", "/metrics", "/openapi.json"):
            status, _ = await call(http, "GET", path)
            assert status in (200, 503), path


async def test_a_bearer_token_that_is_not_utf8_or_ascii_is_an_invalid_token(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (url, _):
        for given in (b"\xff", b"\xc3\xa9", API_TOKEN.encode() + b"\xff"):
            status, body = await raw_request(url, "GET", "/v1/watches", [("Authorization", b"Bearer " + given)])
            assert (status, orjson.loads(body)) == (401, {"error": "invalid token"}), given


async def test_without_an_api_token_management_is_disabled(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver, token=None)
    async with serving(config) as (_, http):
        status, answer = await call(http, "GET", "/v1/watches", headers={"Authorization": "Bearer anything"})
    assert status == 403
    assert "STATEHOOK_API__TOKEN" in answer["error"]


# ---- watches ------------------------------------------------------------------------------------


async def test_watch_requests_are_validated_with_a_reason(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver,
                        providers={"rev": provider_blocks(sim)["rev"]})
    async with serving(config) as (_, http):
        status, answer = await call(http, "POST", "/v1/watches", headers=AUTH, json={"provider": "nope", "ids": ["1"]})
        assert status == 400 and "unknown provider" in answer["error"]
        status, answer = await call(http, "POST", "/v1/watches", headers=AUTH,
                                    json={"provider": "artistree", "ids": ["1"]})
        assert status == 400 and "not configured" in answer["error"] and answer["configured"] == ["rev"]
        status, answer = await call(http, "POST", "/v1/watches", headers=AUTH, json={"provider": "rev"})
        assert status == 400 and answer["problems"][0]["field"] == "ids"
        status, answer = await call(http, "POST", "/v1/watches", headers=AUTH, json={"provider": "rev", "ids": []})
        assert status == 400
        status, answer = await call(http, "POST", "/v1/watches", headers=AUTH,
                                    json={"provider": "rev", "ids": ["TC1"], "interval": "soon"})
        assert status == 400 and answer["problems"][0]["field"] == "interval"
        status, answer = await call(http, "POST", "/v1/watches", headers=AUTH,
                                    json={"provider": "rev", "kind": "scan", "ids": ["x"]})
        assert status == 400 and "kind" in answer["error"]
        status, answer = await call(http, "POST", "/v1/watches", headers=AUTH, data=b"{not json",
                                    )
        assert status == 400 and "not JSON" in answer["error"]
        status, answer = await call(http, "POST", "/v1/watches", headers=AUTH, json=["rev"])
        assert status == 400
        for stall in ("-1h", {"Reviewed": "soon"}, {"": "1h"}, [1], True):
            status, answer = await call(http, "POST", "/v1/watches", headers=AUTH,
                                        json={"provider": "rev", "ids": ["TC1"], "stall_after": stall})
            assert status == 400 and answer["problems"][0]["field"].startswith("stall_after"), (stall, answer)
    assert await redis.hlen(keys.META) == 0
    async with serving(config) as (_, http):
        table = {"In Progress": "2h", "*": 0}
        for stall, stored in (("90m", {"*": 5400.0}), (table, {"In Progress": 7200.0, "*": 0.0})):
            status, answer = await call(http, "POST", "/v1/watches", headers=AUTH,
                                        json={"provider": "rev", "ids": ["TC1"], "stall_after": stall})
            assert status in (200, 201)
            status, listing = await call(http, "GET", "/v1/watches", headers=AUTH)
            assert [w["stall_after"] for w in listing["watches"]] == [stored]
            await call(http, "DELETE", "/v1/watches?rkey=rev:order:TC1", headers=AUTH)


async def test_a_watch_added_through_the_api_is_polled_and_its_events_delivered(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    oid = sim["artistree"].add_order(state="In Progress", title="Poster v3")["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    config = api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (_, http), running_worker(config):
        status, answer = await call(http, "POST", "/v1/watches", headers=AUTH,
                                    json={"provider": "artistree", "ids": [oid], "interval": "0.2s"})
        assert status == 201
        assert answer["rkeys"] == [rkey] and answer["added"] == 1
        status, again = await call(http, "POST", "/v1/watches", headers=AUTH,
                                   json={"provider": "artistree", "ids": [oid], "interval": "0.2s"})
        assert (status, again["added"]) == (200, 0)

        await wait_for(lambda: redis.hexists(keys.STATE, rkey), what="baseline poll")
        sim["artistree"].set_state(oid, "Failed")
        await wait_for(lambda: len(receiver.delivered) >= 1, what="delivery")

        status, listing = await call(http, "GET", "/v1/watches?provider=artistree", headers=AUTH)
        assert status == 200
        assert [(w["rkey"], w["source"], w["interval"]) for w in listing["watches"]] == [(rkey, "api", 0.2)]
        assert listing["watches"][0]["stall_after"] is None  # the provider's

        async def delivery_recorded() -> bool:
            _, view = await call(http, "GET", f"/v1/resources/{rkey}", headers=AUTH)
            return bool(view["history"] and view["history"][0]["deliveries"])

        await wait_for(delivery_recorded, what="the attempt in the timeline")
        status, view = await call(http, "GET", f"/v1/resources/{rkey}", headers=AUTH)
        assert status == 200
        assert view["snapshot"]["order_state"] == "Failed"
        assert view["state"]["seq"] == 1 and view["watch"]["source"] == "api"
        (event,) = view["history"]
        assert event["type"] == "artistree.order.state_changed" and event["severity"] == "critical"
        assert [(d["destination"], d["ok"]) for d in event["deliveries"]] == [("hook", True)]

        async def lists_the_outbox() -> bool:
            """The latest 10 of the outbox, oldest first (the dispatcher may trim it meanwhile:
            asked again until a listing and a read of the stream agree)."""
            status, events = await call(http, "GET", "/v1/events?limit=10", headers=AUTH)
            stored = [orjson.loads(fields[b"e"])["id"] for _, fields in await redis.xrange(keys.OUTBOX)][-10:]
            return status == 200 and [e["id"] for e in events["events"]] == stored

        await wait_for(lists_the_outbox, what="/v1/events to list what the outbox holds")
        status, own = await call(http, "GET", f"/v1/events?rkey={rkey}", headers=AUTH)
        assert [e["id"] for e in own["events"]] == [event["id"]]

        status, removed = await call(http, "DELETE", "/v1/watches", headers=AUTH,
                                     json={"provider": "artistree", "ids": [oid]})
        assert (status, removed["removed"]) == (200, 1)
    assert receiver.delivered[0].event["data"]["to"] == "Failed"
    assert not await redis.hexists(keys.META, rkey)


async def hscan_calls(redis: aioredis.Redis) -> int:
    return int((await redis.info("commandstats")).get("cmdstat_hscan", {}).get("calls", 0))


async def test_a_page_of_watches_holds_at_most_limit_and_its_cursor_goes_on(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    """A small watch hash answers one HSCAN whole: `limit=1` returned all 16 watches."""
    await Store(redis).add_watches([(f"rev:order:R{i:02d}", WatchMeta(interval=60.0)) for i in range(16)])
    async with serving(api_config(tmp_path, redis_url, sim, receiver)) as (_, http):
        seen, cursor = [], "0"
        while cursor is not None:
            status, listing = await call(http, "GET", f"/v1/watches?limit=5&cursor={cursor}", headers=AUTH)
            assert status == 200 and len(listing["watches"]) <= 5, listing
            seen += [w["rkey"] for w in listing["watches"]]
            cursor = listing["cursor"]
    assert sorted(seen) == [f"rev:order:R{i:02d}" for i in range(16)]


async def few_among_many(redis: aioredis.Redis) -> None:
    """3000 watches of rev, one of artistree."""
    await Store(redis).add_watches([(f"rev:order:R{i:05d}", WatchMeta(interval=60.0)) for i in range(3000)]
                                   + [("artistree:order:A1", WatchMeta(interval=60.0))])


async def test_a_filter_few_watches_match_reads_a_bounded_part_of_the_hash_per_page(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    await few_among_many(redis)
    async with serving(api_config(tmp_path, redis_url, sim, receiver)) as (_, http):
        before = await hscan_calls(redis)
        status, listing = await call(http, "GET", "/v1/watches?provider=sartiq&limit=1", headers=AUTH)
        assert (status, listing) == (200, {"watches": [], "cursor": None})  # read to the end: 3001 < SCAN_BUDGET
        assert await hscan_calls(redis) - before <= 16  # HSCAN asked for more per call while none matched
        monkeypatch.setattr(reads, "SCAN_BUDGET", 500)  # then a page ends before the hash does
        seen: list[str] = []
        cursor, pages = "0", 0
        while cursor is not None:
            before = await hscan_calls(redis)
            status, listing = await call(http, "GET", f"/v1/watches?provider=artistree&limit=1&cursor={cursor}",
                                         headers=AUTH)
            assert status == 200 and len(listing["watches"]) <= 1
            assert await hscan_calls(redis) - before <= 10
            seen += [w["rkey"] for w in listing["watches"]]
            cursor, pages = listing["cursor"], pages + 1
        assert seen == ["artistree:order:A1"] and pages > 2  # a page of none, with a cursor to go on from


async def test_resources_and_events_refuse_bad_parameters(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (_, http):
        assert (await call(http, "GET", "/v1/resources/not-a-key", headers=AUTH))[0] == 400
        status, answer = await call(http, "GET", "/v1/resources/rev:order:NOPE", headers=AUTH)
        assert status == 404 and "never polled" in answer["error"]
        assert (await call(http, "GET", "/v1/events?after=yesterday", headers=AUTH))[0] == 400
        assert (await call(http, "GET", "/v1/events?limit=0", headers=AUTH))[0] == 400
        status, answer = await call(http, "GET", "/v1/nothing-here", headers=AUTH)
        assert status == 404 and answer["error"]


# ---- inbound hooks ---------------------------------------------------------------------------------


async def test_a_rev_hook_triggers_a_poll_within_a_second(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    """The watch interval is an hour: after the baseline, only the hook explains a poll."""
    number = sim["rev"].add_order(status="Transcribing")
    rkey = ResourceRef("rev", "order", number).key
    config = api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (_, http), running_worker(config):
        status, _ = await call(http, "POST", "/v1/watches", headers=AUTH,
                               json={"provider": "rev", "ids": [number], "interval": "1h"})
        assert status == 201
        await wait_for(lambda: redis.hexists(keys.STATE, rkey), what="baseline poll")
        assert (await redis.zscore(keys.DUE, rkey)) > time.time() + 3000

        sim["rev"].add_attachment(number, "transcript", "Transcript.docx")
        sim["rev"].set_status(number, "Complete")
        before = sim.requests["rev"]
        started = time.monotonic()
        status, answer = await call(http, "POST", f"/v1/hooks/rev/{HOOK_TOKEN}",
                                    data={"order_number": number, "status": "Complete"})
        assert (status, answer["rkey"]) == (202, rkey)
        await wait_for(lambda: sim.requests["rev"] > before, timeout=1.0, what="a poll within a second")
        assert time.monotonic() - started < 1.0
        await wait_for(lambda: len(receiver.delivered) >= 2, what="the events of that poll")

        # a JSON notification works the same way, for a finished order too
        sim["rev"].add_comment(number, "Rev Support", "QC done")
        before = sim.requests["rev"]
        started = time.monotonic()
        status, _ = await call(http, "POST", f"/v1/hooks/rev/{HOOK_TOKEN}", json={"order_number": number})
        assert status == 202
        await wait_for(lambda: sim.requests["rev"] > before, timeout=1.0, what="a second hinted poll")
        assert time.monotonic() - started < 1.0
        await wait_for(lambda: len(receiver.delivered) >= 3, what="the comment event")
    types = sorted(r.event["type"] for r in receiver.delivered)
    assert types == ["rev.order.attachment_added", "rev.order.comment_added", "rev.order.state_changed"]


BAD_FORMS = [
    ("application/x-www-form-urlencoded; charset=nope", b"order_number=TC9"),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=order_number\r\n"
                                        b"Content-Transfer-Encoding: bogus\r\n\r\nTC9\r\n--b--\r\n"),
]
"""forms aiohttp cannot read: a charset that does not exist (LookupError), a part's unknown
transfer encoding (RuntimeError)"""


async def test_hooks_refuse_bad_tokens_and_bodies(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    await redis.hset(keys.META, "rev:order:TC9", b'{"i": 60, "d": false, "s": null, "src": "api"}')
    async with serving(config) as (_, http):
        status, answer = await call(http, "POST", "/v1/hooks/rev/wrong-token", data={"order_number": "TC9"})
        assert (status, answer["error"]) == (401, "invalid hook token")
        status, answer = await call(http, "POST", f"/v1/hooks/rev/{HOOK_TOKEN}", data={"order_number": "TC10"})
        assert status == 404 and "not watched" in answer["error"]
        status, answer = await call(http, "POST", f"/v1/hooks/rev/{HOOK_TOKEN}", data={"status": "Complete"})
        assert status == 422 and "order_number" in answer["error"]
        status, answer = await call(http, "POST", f"/v1/hooks/rev/{HOOK_TOKEN}", data=b"{oops",
                                    headers={"Content-Type": "application/json"})
        assert status == 400
        status, answer = await call(http, "POST", f"/v1/hooks/artistree/{HOOK_TOKEN}", json={"order_id": "x"})
        assert status == 404 and "no inbound hooks" in answer["error"]
        status, answer = await call(http, "POST", f"/v1/hooks/rev/{HOOK_TOKEN}",
                                    data=b'{"order": ' * 1000 + b"{}" + b"}" * 1000,
                                    headers={"Content-Type": "application/json"})
        assert status == 422 and "order_number" in answer["error"]
        for ctype, body in BAD_FORMS:
            status, answer = await call(http, "POST", f"/v1/hooks/rev/{HOOK_TOKEN}", data=body,
                                        headers={"Content-Type": ctype})
            assert (status, answer["error"]) == (400, "body must be a JSON object or a form"), ctype
        status, answer = await call(http, "POST", f"/v1/hooks/rev/{HOOK_TOKEN}", json={"order_number": "TC9"})
        assert status == 202
    config = api_config(tmp_path, redis_url, sim, receiver, hook_tokens={})
    async with serving(config) as (_, http):
        status, answer = await call(http, "POST", f"/v1/hooks/rev/{HOOK_TOKEN}", json={"order_number": "TC9"})
        assert status == 404 and "STATEHOOK_API__HOOK_TOKENS__REV" in answer["error"]


def test_rev_order_numbers_are_found_in_the_usual_spellings() -> None:
    assert rev_order_number({"order_number": "TC432432"}) == "TC432432"
    assert rev_order_number({"orderNumber": " CP1 "}) == "CP1"
    assert rev_order_number({"order": {"order_number": "TC2"}}) == "TC2"
    assert rev_order_number({"order_number": "../../etc"}) is None
    assert rev_order_number({}) is None
    assert rev_order_number({"order": {"order_number": "TC1", "order": {"orderId": "TC3"}}}) == "TC3"


def test_a_rev_order_number_is_looked_for_a_few_order_objects_deep_only() -> None:
    def nested(levels: int) -> dict[str, Any]:
        body: dict[str, Any] = {"order_number": "TC7"}
        for _ in range(levels):
            body = {"order": body}
        return body

    assert rev_order_number(nested(8)) == "TC7"
    assert rev_order_number(nested(9)) is None
    assert rev_order_number(nested(5000)) is None  # no RecursionError


# ---- the API's description ------------------------------------------------------------------------


async def test_the_openapi_document_describes_every_route(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver)
    async with serving(config) as (_, http):
        status, doc = await call(http, "GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert doc == openapi_document(config)  # plain JSON, nothing lost on the way
    routes = {"/healthz": {"get"}, "/metrics": {"get"}, "/v1/watches": {"get", "post", "delete"},
              "/v1/resources/{rkey}": {"get"}, "/v1/events": {"get"}, "/v1/hooks/{provider}/{token}": {"post"}}
    for path, methods in routes.items():
        assert set(doc["paths"][path]) == methods, path
    schemas = doc["components"]["schemas"]
    for path in doc["paths"].values():
        for op in path.values():
            for answer in op["responses"].values():
                for content in answer.get("content", {}).values():
                    ref = content["schema"].get("$ref")
                    if ref:
                        assert ref.rsplit("/", 1)[1] in schemas
