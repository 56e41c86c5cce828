"""The console's pages over HTTP (no browser), against the API on a free port, real Redis, and
for the resource page a real worker and the simulator: cursor pagination and search of the
watches, adding and removing them, the dead letters' filters, pages, replay and purge, the
live tail's stream, and no secret on any page."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from model.resources import ResourceRef
from simulator.artistree import ArtistreeSim
from simulator.core import SimProvider, Simulator
from simulator.receivers import WebhookReceiver
from simulator.rev import RevSim
from store import keys, reads
from store.snapshots import Store, WatchMeta
from tests.conftest import wait_for
from tests.console.kit import TOKEN, ConsoleClient, serving_console
from tests.kit import WHSEC, running_worker, telling_deliveries
from tests.test_api import api_config, few_among_many, hscan_calls
from worker.delivery_ops import disable_destination

PAGES = ("/ui/", "/ui/watches", "/ui/events", "/ui/dead-letters", "/ui/destinations")


@pytest.fixture
def sim_providers() -> list[SimProvider]:
    return [ArtistreeSim(), RevSim()]


def _dead(i: int, *, rkey: str | None = None, type_: str = "rev.order.state_changed") -> bytes:
    return orjson.dumps({"id": f"evt_{i:04d}", "type": type_, "resource": {"key": rkey or f"rev:order:TC{i:04d}"},
                         "summary": f"event {i}"})


def _flash(text: str) -> str:
    found = re.search(r'<p role="status" class="flash[^"]*">([^<]*)</p>', text)
    return found.group(1) if found else ""


def _links(text: str, rel: str = "next") -> str | None:
    found = re.search(rf'href="([^"]+)" rel="{rel}"', text)
    return found.group(1).replace("&amp;", "&") if found else None


async def test_watches_are_paged_by_cursor_and_searched(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    store = Store(redis)
    meta = WatchMeta(interval=60.0)
    await store.add_watches([(f"rev:order:TC{i:04d}", meta) for i in range(600)]
                            + [("artistree:order:needle-7", WatchMeta(interval=60.0, source="config"))])
    async with serving_console(api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)) as (_, client, _s):
        await client.sign_in()
        seen: list[str] = []
        path: str | None = "/ui/watches"
        pages = 0
        while path is not None:
            page = await client.get(path)
            assert page.status == 200
            seen += re.findall(r'rkey=([^"&]+)"', page.text)
            path = _links(page.text)
            pages += 1
        assert pages >= 6  # about 50 a page (more than 512 watches: HSCAN reads a page at a time)
        assert len(seen) == len(set(seen)) == 601
        found = await client.get("/ui/watches?q=needle")
        assert re.findall(r'rkey=([^"&]+)"', found.text) == ["artistree%3Aorder%3Aneedle-7"]
        assert (await client.get("/ui/watches?q=needle&source=api")).text.count("needle-7") == 0
        assert "TC0001" not in (await client.get("/ui/watches?provider=artistree")).text
        assert (await client.get("/ui/watches?cursor=-1")).status == 400


async def test_a_watch_search_reads_a_bounded_part_of_the_hash_per_page_and_pages_on(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    await few_among_many(redis)
    monkeypatch.setattr(reads, "SCAN_BUDGET", 500)  # a page ends before the hash does
    async with serving_console(api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)) as (_, client, _s):
        await client.sign_in()
        for search, expected in (("no-such-watch", []), ("A1", ["artistree%3Aorder%3AA1"])):
            seen: list[str] = []
            path: str | None = f"/ui/watches?q={search}"
            pages = 0
            while path is not None:
                before = await hscan_calls(redis)
                page = await client.get(path)
                assert page.status == 200 and await hscan_calls(redis) - before <= 10
                seen += re.findall(r'rkey=([^"&]+)"', page.text)
                path, pages = _links(page.text), pages + 1
                if path is not None and search == "no-such-watch":  # an empty page that reads on says so
                    assert "No watch matches in this part of the list" in page.text
            assert seen == expected and pages > 2, search


async def test_watches_are_added_and_removed_with_the_apis_validation(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    async with serving_console(api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)) as (_, client, _s):
        await client.sign_in()
        added = await client.post("/ui/watches", {"provider": "rev", "ids": "TC1, TC2\nTC3", "interval": "5m"},
                                  follow=True)
        assert "3 watch(es) of rev registered, 3 new." in added.text
        assert await redis.hlen(keys.META) == 3
        bad = await client.post("/ui/watches", {"provider": "rev", "ids": "TC1", "interval": "soon"}, follow=True)
        assert "Not added: invalid watch request: interval: not a duration" in bad.text
        unknown = await client.post("/ui/watches", {"provider": "nope", "ids": "x"}, follow=True)
        assert "Not added: unknown provider" in unknown.text
        removed = await client.post("/ui/watches/remove", [("rkey", "rev:order:TC1"), ("rkey", "rev:order:TC2")],
                                    follow=True)
        assert "2 watch(es) removed." in removed.text
        assert await redis.hkeys(keys.META) == [b"rev:order:TC3"]  # type: ignore[misc]


async def test_dead_letters_are_filtered_paged_replayed_and_purged(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    deliveries = telling_deliveries(redis)
    for i in range(120):
        await deliveries.dead_letter(_dead(i), "hook", f"HTTP 500: boom {i}", 500, 3)
    for i in range(120, 130):
        await deliveries.dead_letter(_dead(i, type_="artistree.order.reviewed", rkey=f"artistree:order:o{i}"),
                                     "other", "destination is not configured", None, 1)
    async with serving_console(api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)) as (_, client, _s):
        await client.sign_in()
        ids: list[str] = []
        path: str | None = "/ui/dead-letters"
        while path is not None:
            page = await client.get(path)
            ids += re.findall(r'name="id" value="([^"]+)"', page.text)
            path = _links(page.text)
        assert len(ids) == len(set(ids)) == 130
        only = await client.get("/ui/dead-letters?type=artistree.*")
        assert len(re.findall(r'name="id" value="', only.text)) == 10
        assert len(re.findall(r'name="id" value="', (await client.get("/ui/dead-letters?rkey=TC000")).text)) == 10
        assert (await client.get("/ui/dead-letters?since=yesterday")).status == 400

        replayed = await client.post("/ui/dead-letters/replay", [("id", ids[0]), ("id", ids[1])], follow=True)
        assert "2 dead letter(s) replayed: 2 delivery job(s) queued" in replayed.text
        assert await redis.xlen(keys.DLQ) == 128
        assert await redis.zcard("arq:queue") == 2
        nothing = await client.post("/ui/dead-letters/replay", {}, follow=True)
        assert "Select at least one" in nothing.text

        matching = await client.post("/ui/dead-letters/replay", {"scope": "matching", "destination": "other"},
                                     follow=True)
        assert "10 dead letter(s) replayed" in matching.text
        assert await redis.xlen(keys.DLQ) == 118
        unconfirmed = await client.post("/ui/dead-letters/purge", {"scope": "matching", "rkey": "TC000"}, follow=True)
        assert "Not purged" in unconfirmed.text and await redis.xlen(keys.DLQ) == 118
        purged = await client.post("/ui/dead-letters/purge", {"scope": "matching", "rkey": "TC000", "confirm": "yes"},
                                   follow=True)
        assert "“8 dead letter(s) deleted.”" in f"“{_flash(purged.text)}”"  # TC0002…TC0009: 0 and 1 were replayed
        everything = await client.post("/ui/dead-letters/purge", {"scope": "matching", "confirm": "yes"}, follow=True)
        assert _flash(everything.text) == "110 dead letter(s) deleted."
        assert await redis.xlen(keys.DLQ) == 0


async def test_dead_letter_times_before_1970_are_refused_with_a_reason(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    await telling_deliveries(redis).dead_letter(_dead(1), "hook", "HTTP 500: boom", 500, 3)
    async with serving_console(api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)) as (_, client, _s):
        await client.sign_in()
        for query in ("since=1969-12-31T23:59", "until=1969-12-31T23:59:59", "since=0001-01-01T00:00"):
            page = await client.get(f"/ui/dead-letters?{query}")
            assert page.status == 400 and "a time from 1970-01-01T00:00 (UTC) on" in page.text, query
        for action in ("replay", "purge"):
            done = await client.post(f"/ui/dead-letters/{action}", {"scope": "matching", "confirm": "yes",
                                                                    "until": "1969-12-31T23:59"})
            assert done.status == 400 and "until: a time from 1970-01-01T00:00 (UTC) on" in done.text, action
        assert await redis.xlen(keys.DLQ) == 1
        page = await client.get("/ui/dead-letters?since=1970-01-01T00:00&until=1970-01-01T00:00")
        assert page.status == 200 and 'name="id" value="' not in page.text


async def test_no_page_shows_a_secret(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    secrets = ["PATHSECRET0123", "HEADERSECRET99", WHSEC, TOKEN]
    destination = {"kind": "webhook", "url": "https://hooks.example.invalid/T000/PATHSECRET0123?sig=PATHSECRET0123",
                   "secret": WHSEC, "headers": {"Authorization": "Bearer HEADERSECRET99"}}
    config = api_config(tmp_path, redis_url, sim, receiver, token=TOKEN, destination=destination)
    await telling_deliveries(redis).dead_letter(_dead(1), "hook", "HTTP 410: gone", 410, 1)
    await telling_deliveries(redis).disable("hook", "HTTP 410 at 2026-11-23T10:15:02Z")
    async with serving_console(config) as (_, client, _s):
        await client.sign_in()
        for path in PAGES:
            page = await client.get(path)
            assert page.status == 200, path
            assert not [s for s in secrets if s in page.text], path
        shown = (await client.get("/ui/destinations")).text
        assert "https://hooks.example.invalid/********" in shown and "disabled" in shown


async def _stream_events(client: ConsoleClient, query: str, wanted: int,
                         started: asyncio.Event | None = None) -> list[dict[str, Any]]:
    """The first `wanted` events of a tail; `started` is set once its first bytes came (its
    position is fixed by then)."""
    found: list[dict[str, Any]] = []
    async with client.http.get(f"/ui/events/stream?{query}") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        async for line in resp.content:
            if started is not None:
                started.set()
            if line.startswith(b"data: {") and b"stream_id" in line:
                found.append(orjson.loads(line[6:]))
                if len(found) == wanted:
                    return found
    return found


async def test_the_live_tail_streams_new_matching_events(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    def event(i: int, provider: str, severity: str) -> dict[str, bytes]:
        return {"e": orjson.dumps({
            "id": f"evt_{i}", "type": f"{provider}.order.state_changed", "provider": provider, "severity": severity,
            "summary": f"change {i}", "detected_at": "2026-11-23T10:15:02Z",
            "resource": {"key": f"{provider}:order:{i}"}, "snapshot": {"secret": "no"}})}

    await redis.xadd(keys.OUTBOX, event(0, "rev", "info"))  # before the stream: not sent again
    async with serving_console(api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)) as (_, client, _s):
        await client.sign_in()
        listed = await client.get("/ui/events")
        assert "change 0" in listed.text
        started = asyncio.Event()
        tail = asyncio.create_task(_stream_events(client, "provider=artistree&severity=critical", 2, started))
        await asyncio.wait_for(started.wait(), 10)
        for i, (provider, severity) in enumerate([("rev", "critical"), ("artistree", "info"),
                                                  ("artistree", "critical"), ("artistree", "critical")], 1):
            await redis.xadd(keys.OUTBOX, event(i, provider, severity))
        got = await asyncio.wait_for(tail, 10)
        assert [e["summary"] for e in got] == ["change 3", "change 4"]
        assert set(got[0]) == {"stream_id", "at", "severity", "type", "rkey", "summary"}
        resumed = await asyncio.wait_for(_stream_events(client, f"after={got[0]['stream_id']}", 1), 10)
        assert resumed[0]["summary"] == "change 4"


async def test_a_resources_page_shows_its_timeline_with_each_delivery_attempt(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    oid = sim["artistree"].add_order(state="In Progress", title="Poster v3")["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    config = api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)
    async with serving_console(config) as (_, client, _s), running_worker(config):
        await client.sign_in()
        await client.post("/ui/watches", {"provider": "artistree", "ids": oid, "interval": "0.2s"})
        await wait_for(lambda: redis.hexists(keys.STATE, rkey), what="baseline poll")
        sim["artistree"].set_state(oid, "Failed")
        await wait_for(lambda: len(receiver.delivered) >= 1, what="delivery")

        async def shows_the_attempt() -> bool:
            page = await client.get(f"/ui/resource?rkey={rkey}")
            return "Order “Poster v3”: In Progress → Failed" in page.text and "delivered" in page.text

        await wait_for(shows_the_attempt, what="the attempt on the resource page")
        page = await client.get(f"/ui/resource?rkey={rkey}")
        assert "artistree.order.state_changed" in page.text and ">hook<" in page.text
        assert "/order_state" in page.text and "Failed" in page.text
        assert "asset_preview_url" in page.text  # named as volatile: left out of the snapshot
        polled = await client.post("/ui/resource/poll", {"rkey": rkey}, follow=True)
        assert "Poll scheduled" in polled.text
        missing = await client.get("/ui/resource?rkey=artistree:order:nope")
        assert missing.status == 404 and "never polled" in missing.text
        assert (await client.get("/ui/resource?rkey=nonsense")).status == 400
        await disable_destination(redis, config, "hook", "by the test")  # a destination's timeline: its page
        told = await client.get("/ui/resource?rkey=statehook:destination:hook")
        assert told.status == 200 and "statehook.destination.disabled" in told.text


async def test_while_redis_is_down_pages_say_so_and_sign_in_still_works(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    from tests.conftest import free_port

    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with serving_console(api_config(tmp_path, down, sim, receiver, token=TOKEN)) as (_, client, _s):
        assert (await client.sign_in()).status == 303  # the session needs no Redis
        for path in PAGES:
            page = await client.get(path)
            assert page.status == 503, path
            assert "Redis is unavailable (ConnectionError)" in page.text and page.headers["Retry-After"] == "5"
