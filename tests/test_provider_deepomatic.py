"""Deepomatic Engage provider against the simulator: auth, normalize, every event type, faults (the spec
on the seed's samples, without a server: tests/pure/test_provider_deepomatic.py)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from core.diff import diff
from model.errors import MalformedPayload, NotFound, RateLimited, Unauthorized, Unavailable
from model.events import EventDraft, Severity
from model.resources import ResourceRef, Snapshot
from providers.deepomatic import DeepomaticProvider, DeepomaticSettings
from simulator.core import Fault, SimProvider, Simulator
from simulator.deepomatic import DeepomaticSim
from store.snapshots import Store, WatchMeta
from tasks.poll import Poller, PollOutcome
from tests.conftest import count_parses

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "sim-api-key"
WO = "wo-1"
REF = ResourceRef("deepomatic", "work_order", WO)


@pytest.fixture
def sim_providers() -> list[SimProvider]:
    deepomatic = DeepomaticSim(api_key=KEY)
    deepomatic.add_work_order(WO, name="Pylon 12 maintenance")
    return [deepomatic]


def make_provider(
    sim: Simulator, session: aiohttp.ClientSession, *, api_key: str = KEY, include_inputs: bool = True
) -> DeepomaticProvider:
    settings = DeepomaticSettings(
        site="acme", api_key=api_key, base_url=sim.url("deepomatic"), include_inputs=include_inputs
    )
    return DeepomaticProvider(settings, session)


@pytest.fixture
def provider(sim: Simulator, session: aiohttp.ClientSession) -> DeepomaticProvider:
    return make_provider(sim, session)


async def poll(provider: DeepomaticProvider, ref: ResourceRef = REF) -> Snapshot:
    return provider.normalize(ref, await provider.fetch(ref))


def classify(provider: DeepomaticProvider, old: Snapshot, new: Snapshot) -> list[EventDraft]:
    return provider.classify(REF, old, new, diff(old, new))


def types(drafts: list[EventDraft]) -> list[str]:
    return [d.type for d in drafts]


# ---- settings and auth ---------------------------------------------------------------------


async def test_token_header_is_accepted(provider: DeepomaticProvider, session: aiohttp.ClientSession) -> None:
    assert await provider.auth.headers(session) == ({"Authorization": f"Token {KEY}"}, None)
    assert await provider.auth.retry_after_401(session, None) is False
    payload = await provider.fetch(REF)
    assert payload["id"] == WO


async def test_wrong_key_is_unauthorized_without_the_key_in_the_message(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    secret = "wrong-key-s3cr3t"
    provider = make_provider(sim, session, api_key=secret)
    with pytest.raises(Unauthorized) as caught:
        await provider.fetch(REF)
    assert caught.value.status == 401
    assert secret not in str(caught.value)
    assert KEY not in str(caught.value)
    assert "No user found" in str(caught.value)


async def test_unknown_work_order_is_not_found_with_the_detail(provider: DeepomaticProvider) -> None:
    with pytest.raises(NotFound) as caught:
        await provider.fetch(ResourceRef("deepomatic", "work_order", "nope"))
    assert caught.value.status == 404
    assert "WorkOrder not found!" in str(caught.value)


async def test_fetch_asks_without_inputs_by_default(sim: Simulator, session: aiohttp.ClientSession) -> None:
    provider = make_provider(sim, session, include_inputs=False)
    payload = await provider.fetch(REF)
    assert "inputs" not in payload
    snap = provider.normalize(REF, payload)
    assert "conformity" not in snap and "inputs" not in snap


async def test_path_without_trailing_slash_redirects(sim: Simulator, session: aiohttp.ClientSession) -> None:
    url = f"{sim.url('deepomatic')}/v0.2/work-orders/{WO}?include_inputs=false"
    async with session.get(url, headers={"Authorization": f"Token {KEY}"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["id"] == WO


# ---- normalize ------------------------------------------------------------------------------


async def test_seed_broken_sample_served_over_http_is_malformed(
    sim: Simulator, provider: DeepomaticProvider
) -> None:
    broken = (FIXTURES / "deepomatic_seed_sample_broken.txt").read_bytes()
    sim.faults.add("deepomatic", f"/v0.2/work-orders/{WO}/", Fault(status=200, body=broken, times=1))
    with pytest.raises(MalformedPayload):
        await provider.fetch(REF)


# ---- no change where nothing happened ------------------------------------------------------


async def test_rotating_image_urls_are_no_change(sim: Simulator, provider: DeepomaticProvider) -> None:
    first_payload = await provider.fetch(REF)
    second_payload = await provider.fetch(REF)
    urls = [i["data"]["value"] for i in first_payload["inputs"] if i["data"]["type"] == "image"]
    assert urls and all("Signature=" in u for u in urls)
    assert urls != [i["data"]["value"] for i in second_payload["inputs"] if i["data"]["type"] == "image"]
    assert diff(provider.normalize(REF, first_payload), provider.normalize(REF, second_payload)) == []


async def test_task_id_changes_are_no_change(sim: Simulator, provider: DeepomaticProvider) -> None:
    before_payload = await provider.fetch(REF)
    sim["deepomatic"].rename_task_ids(WO)
    after_payload = await provider.fetch(REF)
    assert {t["id"] for t in before_payload["tasks"]}.isdisjoint({t["id"] for t in after_payload["tasks"]})
    before, after = provider.normalize(REF, before_payload), provider.normalize(REF, after_payload)
    assert diff(before, after) == []
    assert classify(provider, before, after) == []


# ---- events, one scenario each -------------------------------------------------------------


async def test_progress_within_a_step_is_no_event(sim: Simulator, provider: DeepomaticProvider) -> None:
    sim["deepomatic"].set_progress(WO, 10)
    at_10 = await poll(provider)
    sim["deepomatic"].set_progress(WO, 20)
    at_20 = await poll(provider)
    assert diff(at_10, at_20)  # a change to store, but nothing to tell anyone
    assert classify(provider, at_10, at_20) == []


async def test_progress_across_a_step_is_one_event(sim: Simulator, provider: DeepomaticProvider) -> None:
    sim["deepomatic"].set_progress(WO, 20)
    at_20 = await poll(provider)
    sim["deepomatic"].set_progress(WO, 30)
    at_30 = await poll(provider)
    drafts = classify(provider, at_20, at_30)
    assert types(drafts) == ["deepomatic.work_order.progress_changed"]
    assert drafts[0].severity is Severity.INFO
    assert drafts[0].data == {"previous": 20, "progress": 30, "step": 25, "state": "in progress"}


async def test_task_analyzed(sim: Simulator, provider: DeepomaticProvider) -> None:
    before = await poll(provider)
    sim["deepomatic"].analyze(WO, "equipment_after_intervention_degradations", 2.0, "Degradations spotted")
    drafts = classify(provider, before, await poll(provider))
    assert types(drafts) == ["deepomatic.work_order.task_analyzed"]
    assert drafts[0].data["task"] == "equipment_after_intervention_degradations"
    assert drafts[0].data["value"] == 2.0 and drafts[0].data["previous"] is None
    assert drafts[0].data["message"] == "Degradations spotted"


async def test_task_corrected(sim: Simulator, provider: DeepomaticProvider) -> None:
    sim["deepomatic"].analyze(WO, "equipment_after_intervention", True)
    before = await poll(provider)
    sim["deepomatic"].correct(WO, "equipment_after_intervention", False)
    drafts = classify(provider, before, await poll(provider))
    assert types(drafts) == ["deepomatic.work_order.task_corrected"]
    assert drafts[0].data["task"] == "equipment_after_intervention"
    assert drafts[0].data["value"] is False and drafts[0].data["analyzed_value"] is True


async def test_completion_is_a_state_change(sim: Simulator, provider: DeepomaticProvider) -> None:
    sim["deepomatic"].set_progress(WO, 80)
    before = await poll(provider)
    sim["deepomatic"].set_progress(WO, 100)
    drafts = classify(provider, before, await poll(provider))
    assert types(drafts) == ["deepomatic.work_order.state_changed", "deepomatic.work_order.progress_changed"]
    state = drafts[0]
    assert state.data["from"] == "in progress" and state.data["to"] == "complete"
    assert state.data["terminal"] is False and state.severity is Severity.INFO
    assert {"path": "/progress_score", "old": 80, "new": 100} in state.data["changes"]


async def test_review_closes_the_work_order(sim: Simulator, provider: DeepomaticProvider) -> None:
    sim["deepomatic"].set_progress(WO, 100)
    before = await poll(provider)
    sim["deepomatic"].review(WO)
    after = await poll(provider)
    drafts = classify(provider, before, after)
    assert types(drafts) == ["deepomatic.work_order.state_changed", "deepomatic.work_order.reviewed"]
    assert drafts[0].data["to"] == "reviewed" and drafts[0].data["terminal"] is True
    assert drafts[1].data["review_date"] == after["review_date"]
    info = provider.describe(REF, after)
    assert info.state == "reviewed" and info.terminal and info.title == "Pylon 12 maintenance"
    assert info.url is not None and info.url.endswith(f"/v0.2/work-orders/{WO}/")


async def test_falling_back_below_complete_is_a_warning(sim: Simulator, provider: DeepomaticProvider) -> None:
    sim["deepomatic"].set_progress(WO, 100)
    before = await poll(provider)
    sim["deepomatic"].set_progress(WO, 90)
    drafts = classify(provider, before, await poll(provider))
    assert drafts[0].type == "deepomatic.work_order.state_changed"
    assert drafts[0].severity is Severity.WARNING


async def test_conformity_error_is_critical(sim: Simulator, provider: DeepomaticProvider) -> None:
    before = await poll(provider)
    sim["deepomatic"].conformity_error(WO, "cabinet_closed", "The photo is blurry")
    after = await poll(provider)
    drafts = classify(provider, before, after)
    assert types(drafts) == ["deepomatic.work_order.conformity_error"]
    assert drafts[0].severity is Severity.CRITICAL
    assert drafts[0].data["task"] == "cabinet_closed"
    assert drafts[0].data["message"] == "The photo is blurry"
    assert drafts[0].data["input"] == "cabinet_closed_photo"
    assert classify(provider, after, await poll(provider)) == []  # still there is not new


async def test_conformity_warning_is_no_event(sim: Simulator, provider: DeepomaticProvider) -> None:
    before = await poll(provider)
    sim["deepomatic"].conformity_error(WO, "cabinet_closed", "A bit dark", level="warning")
    after = await poll(provider)
    assert diff(before, after)
    assert classify(provider, before, after) == []


async def test_turning_inputs_on_is_no_conformity_flood(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim["deepomatic"].conformity_error(WO, "cabinet_closed", "The photo is blurry")
    before = await poll(make_provider(sim, session, include_inputs=False))
    after = await poll(make_provider(sim, session, include_inputs=True))
    assert classify(make_provider(sim, session), before, after) == []


async def test_scripted_steps_reach_review(sim: Simulator, provider: DeepomaticProvider) -> None:
    """The simulator's own progression, polled after each step, yields a plausible story."""
    seen: list[str] = []
    previous = await poll(provider)
    for _ in range(60):
        sim.step()
        current = await poll(provider)
        seen.extend(types(classify(provider, previous, current)))
        previous = current
        if current["state"] == "reviewed":
            break
    assert previous["state"] == "reviewed"
    assert seen.count("deepomatic.work_order.task_analyzed") == 3
    assert "deepomatic.work_order.reviewed" in seen
    assert seen.count("deepomatic.work_order.state_changed") == 2


async def test_control_routes_drive_the_simulator(sim: Simulator, session: aiohttp.ClientSession) -> None:
    control = f"{sim.base_url}/_sim/deepomatic/work-orders"
    async with session.post(control, json={"id": "wo-2", "tasks": {"seal_present": "Boolean"}}) as resp:
        assert resp.status == 201
    async with session.post(f"{control}/wo-2/analyze", json={"task": "seal_present", "value": True}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["tasks"][0]["state"]["analyzed_value"] is True
    async with session.post(f"{control}/wo-2/analyze", json={"task": "nope", "value": 1}) as resp:
        assert resp.status == 400


# ---- faults ---------------------------------------------------------------------------------


async def test_rate_limited(sim: Simulator, provider: DeepomaticProvider) -> None:
    sim.faults.add("deepomatic", "/v0.2/work-orders/", Fault(status=429, retry_after=7, times=1))
    with pytest.raises(RateLimited) as caught:
        await provider.fetch(REF)
    assert caught.value.retry_after == 7
    assert (await provider.fetch(REF))["id"] == WO


async def test_server_error_is_unavailable(sim: Simulator, provider: DeepomaticProvider) -> None:
    sim.faults.add(
        "deepomatic", "/v0.2/work-orders/", Fault(status=500, body=b'{"detail": "boom"}', times=1)
    )
    with pytest.raises(Unavailable) as caught:
        await provider.fetch(REF)
    assert caught.value.status == 500 and "boom" in str(caught.value)


def test_add_many_seeds_work_orders_with_named_tasks() -> None:
    sim = DeepomaticSim()
    ids = sim.add_many(3)
    assert len(set(ids)) == 3
    assert all(sim.payload(i, include_inputs=False)["tasks"] for i in ids)


async def test_without_inputs_an_answer_byte_for_byte_as_before_is_unchanged_without_a_parse(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    provider = make_provider(sim, session, include_inputs=False)
    poller = Poller(Store(redis), {"deepomatic": provider})
    await poller.store.add_watches([(REF.key, WatchMeta(interval=60))])
    assert (await poller.poll([REF.key]))[PollOutcome.BASELINE] == 1
    parsed = count_parses(provider)
    assert (await poller.poll([REF.key]))[PollOutcome.UNCHANGED] == 1
    assert parsed == []
    sim["deepomatic"].set_progress(WO, 60)
    assert (await poller.poll([REF.key]))[PollOutcome.CHANGED] == 1
    assert [orjson.loads(p)["progress_score"] for p in parsed] == [60]


async def test_with_inputs_no_fingerprint_is_kept(
    redis: aioredis.Redis, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Signed image URLs change in every answer: a fingerprint would never match, and
    keeping it would rewrite the state on every poll."""
    poller = Poller(Store(redis), {"deepomatic": make_provider(sim, session, include_inputs=True)})
    await poller.store.add_watches([(REF.key, WatchMeta(interval=60))])
    assert (await poller.poll([REF.key]))[PollOutcome.BASELINE] == 1
    assert (await poller.poll([REF.key]))[PollOutcome.UNCHANGED] == 1
    (state,) = (await poller.store.load([REF.key])).states
    assert state is not None and state.preview == ""
