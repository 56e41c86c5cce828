"""Rev: auth, errors, scan, normalize and classify, against the simulator over real HTTP (the spec on
the seed's samples, without a server: tests/pure/test_provider_rev.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from core.diff import diff
from model.errors import MalformedPayload, NotFound, ProviderError, RateLimited, Unauthorized, Unavailable
from model.events import EventDraft, Severity
from model.resources import ResourceRef, Snapshot
from providers.rev import RevProvider, RevSettings
from simulator.core import Fault, SimProvider, Simulator
from simulator.rev import RevSim
from store.snapshots import Store, WatchMeta
from tasks.poll import Poller, PollOutcome
from tests.conftest import count_parses

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_REF = ResourceRef("rev", "order", "TC432432")


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


@pytest.fixture
def sim_providers() -> list[SimProvider]:
    return [RevSim(results_per_page=3)]


@pytest.fixture
def rev_sim(sim: Simulator) -> RevSim:
    revsim: RevSim = sim["rev"]
    return revsim


def make_provider(
    sim: Simulator, session: aiohttp.ClientSession, client_key: str = "sim-client-key", user_key: str = "sim-user-key"
) -> RevProvider:
    settings = RevSettings(base_url=sim.url("rev"), client_key=SecretStr(client_key), user_key=SecretStr(user_key))
    return RevProvider(settings, session)


@pytest.fixture
def provider(sim: Simulator, session: aiohttp.ClientSession) -> RevProvider:
    return make_provider(sim, session)


def order_ref(number: str) -> ResourceRef:
    return ResourceRef("rev", "order", number)


async def poll(provider: RevProvider, ref: ResourceRef) -> Snapshot:
    return provider.normalize(ref, await provider.fetch(ref))


async def drafts_across(provider: RevProvider, ref: ResourceRef, change: Callable[[], object]) -> list[EventDraft]:
    """fetch → normalize, apply `change` at the simulator, fetch → normalize → diff → classify."""
    old = await poll(provider, ref)
    change()
    new = await poll(provider, ref)
    return provider.classify(ref, old, new, diff(old, new))


# ---- auth and errors -----------------------------------------------------------------


async def test_auth_header_has_the_documented_format(
    provider: RevProvider, rev_sim: RevSim, session: aiohttp.ClientSession
) -> None:
    number = rev_sim.add_order()
    assert await provider.auth.headers(session) == (
        {"Authorization": "Rev sim-client-key:sim-user-key", "Accept": "application/json"},
        None,
    )
    assert await provider.auth.retry_after_401(session, None) is False  # static keys: a 401 is final
    payload = await provider.fetch(order_ref(number))
    assert payload["order_number"] == number


async def test_wrong_keys_are_unauthorized_and_not_in_the_message(
    sim: Simulator, session: aiohttp.ClientSession, rev_sim: RevSim
) -> None:
    number = rev_sim.add_order()
    provider = make_provider(sim, session, client_key="wrong-client-secret", user_key="wrong-user-secret")
    with pytest.raises(Unauthorized) as caught:
        await provider.fetch(order_ref(number))
    assert caught.value.status == 401
    assert "wrong-client-secret" not in str(caught.value)
    assert "wrong-user-secret" not in str(caught.value)


async def test_unknown_order_is_not_found(provider: RevProvider) -> None:
    with pytest.raises(NotFound):
        await provider.fetch(order_ref("TC000000"))


async def test_bad_request_error_carries_revs_message(provider: RevProvider, sim: Simulator) -> None:
    body = b'{"code": 10001, "message": "Order number is malformed"}'
    sim.faults.add("rev", "/api/v1/orders/TC1", Fault(status=400, body=body, times=1))
    with pytest.raises(ProviderError) as caught:
        await provider.fetch(order_ref("TC1"))
    assert type(caught.value) is ProviderError
    assert caught.value.status == 400
    assert "Order number is malformed" in str(caught.value)
    assert "10001" in str(caught.value)


async def test_simulator_answers_bad_page_with_code_and_message(provider: RevProvider) -> None:
    with pytest.raises(ProviderError, match="page must be an integer") as caught:
        await provider.get_json(f"{provider.base_url}/api/v1/orders", params={"page": "-1"})
    assert caught.value.status == 400


async def test_simulator_refuses_an_accept_other_than_json(
    sim: Simulator, session: aiohttp.ClientSession, rev_sim: RevSim
) -> None:
    number = rev_sim.add_order()
    headers = {"Authorization": "Rev sim-client-key:sim-user-key", "Accept": "application/xml"}
    async with session.get(f"{sim.url('rev')}/api/v1/orders/{number}", headers=headers) as resp:
        assert resp.status == 406
        body = await resp.json()
    assert set(body) == {"code", "message"}


async def test_simulator_401_and_404_have_empty_bodies(
    sim: Simulator, session: aiohttp.ClientSession, rev_sim: RevSim
) -> None:
    number = rev_sim.add_order()
    url = f"{sim.url('rev')}/api/v1/orders"
    async with session.get(f"{url}/{number}", headers={"Accept": "application/json"}) as resp:
        assert (resp.status, await resp.read()) == (401, b"")
    headers = {"Authorization": "Rev sim-client-key:sim-user-key", "Accept": "application/json"}
    async with session.get(f"{url}/NOPE", headers=headers) as resp:
        assert (resp.status, await resp.read()) == (404, b"")


async def test_rate_limit_carries_retry_after(provider: RevProvider, sim: Simulator, rev_sim: RevSim) -> None:
    number = rev_sim.add_order()
    sim.faults.add("rev", f"/api/v1/orders/{number}", Fault(status=429, retry_after=7, times=1))
    with pytest.raises(RateLimited) as caught:
        await provider.fetch(order_ref(number))
    assert caught.value.retry_after == 7
    assert (await provider.fetch(order_ref(number)))["order_number"] == number


async def test_server_error_is_unavailable(provider: RevProvider, sim: Simulator, rev_sim: RevSim) -> None:
    number = rev_sim.add_order()
    sim.faults.add("rev", f"/api/v1/orders/{number}", Fault(status=500, times=1))
    with pytest.raises(Unavailable):
        await provider.fetch(order_ref(number))


async def test_malformed_body_is_malformed_payload(provider: RevProvider, sim: Simulator, rev_sim: RevSim) -> None:
    number = rev_sim.add_order()
    sim.faults.add("rev", f"/api/v1/orders/{number}", Fault(malformed=True, times=1))
    with pytest.raises(MalformedPayload):
        await provider.fetch(order_ref(number))


# ---- scan ----------------------------------------------------------------------------


async def test_scan_visits_every_order_once_across_pages(provider: RevProvider, rev_sim: RevSim) -> None:
    numbers = {rev_sim.add_order(kind="caption" if i % 3 == 0 else "transcription") for i in range(8)}
    pages = [page async for page in provider.scan(ResourceRef("rev", "scan", "all"), {})]
    assert len(pages) == 3  # 3 + 3 + 2 with the simulator's 3 per page
    seen = [item.ref for page in pages for item in page]
    assert sorted(ref.id for ref in seen) == sorted(numbers)
    assert all(ref.provider == "rev" and ref.kind == "order" for ref in seen)
    assert all(item.payload["order_number"] == item.ref.id for page in pages for item in page)


async def test_scan_of_an_empty_account_ends(provider: RevProvider) -> None:
    pages = [page async for page in provider.scan(ResourceRef("rev", "scan", "all"), {})]
    assert pages == [[]]


# ---- the pipeline: fetch → normalize → diff → classify ---------------------------------


async def test_status_change_is_one_state_changed_event(provider: RevProvider, rev_sim: RevSim) -> None:
    number = rev_sim.add_order(status="Transcribing")
    drafts = await drafts_across(provider, order_ref(number), lambda: rev_sim.set_status(number, "Complete"))
    assert [d.type for d in drafts] == ["rev.order.state_changed"]
    (draft,) = drafts
    assert draft.severity is Severity.INFO
    assert draft.summary == f"Order “1” ({number}): Transcribing → Complete"
    assert draft.data["from"] == "Transcribing"
    assert draft.data["to"] == "Complete"
    assert draft.data["terminal"] is True
    assert draft.data["changes"] == [{"path": "/status", "old": "Transcribing", "new": "Complete"}]


async def test_cancellation_is_critical(provider: RevProvider, rev_sim: RevSim) -> None:
    number = rev_sim.add_order(status="Finding Transcriptionist")
    (draft,) = await drafts_across(provider, order_ref(number), lambda: rev_sim.set_status(number, "Cancelled"))
    assert (draft.type, draft.severity, draft.data["terminal"]) == ("rev.order.state_changed", Severity.CRITICAL, True)


async def test_transcript_ready_is_attachment_added(provider: RevProvider, rev_sim: RevSim, sim: Simulator) -> None:
    number = rev_sim.add_order()
    att_ids: list[str] = []

    def complete() -> None:
        att_ids.append(rev_sim.add_attachment(number, "transcript", "Transcript.docx"))
        rev_sim.set_status(number, "Complete")

    drafts = await drafts_across(provider, order_ref(number), complete)
    assert [d.type for d in drafts] == ["rev.order.state_changed", "rev.order.attachment_added"]
    added = drafts[1]
    assert added.severity is Severity.INFO
    assert added.data == {
        "kind": "transcript",
        "name": "Transcript.docx",
        "id": att_ids[0],
        "content_url": f"{sim.url('rev')}/api/v1/attachments/{att_ids[0]}/content",
    }
    assert added.summary == f"Order “1” ({number}): transcript “Transcript.docx” ready"


async def test_new_media_is_not_an_event(provider: RevProvider, rev_sim: RevSim) -> None:
    number = rev_sim.add_order()
    drafts = await drafts_across(
        provider, order_ref(number), lambda: rev_sim.add_attachment(number, "media", "More.mp3")
    )
    assert drafts == []


async def test_new_comment_is_comment_added(provider: RevProvider, rev_sim: RevSim) -> None:
    number = rev_sim.add_order()
    rev_sim.add_comment(number, "John S.", "Please do it quickly")
    drafts = await drafts_across(
        provider, order_ref(number), lambda: rev_sim.add_comment(number, "Rev Support", "Speaker names added")
    )
    assert [d.type for d in drafts] == ["rev.order.comment_added"]
    (draft,) = drafts
    assert draft.severity is Severity.INFO
    assert draft.data["by"] == "Rev Support"
    assert draft.data["text"] == "Speaker names added"
    assert isinstance(draft.data["timestamp"], str)
    assert draft.summary == f"Order “1” ({number}): comment by Rev Support: Speaker names added"


async def test_reordered_attachments_are_not_a_change(provider: RevProvider, rev_sim: RevSim) -> None:
    number = rev_sim.add_order(kind="caption")
    rev_sim.add_attachment(number, "caption", "Caption.srt")
    rev_sim.add_attachment(number, "burnedin", "Caption.mp4", content_type="video/mp4")
    old = await poll(provider, order_ref(number))
    rev_sim.orders[number]["attachments"].reverse()
    new = await poll(provider, order_ref(number))
    assert diff(old, new) == []


async def test_unknown_status_stays_open(provider: RevProvider, rev_sim: RevSim) -> None:
    number = rev_sim.add_order()
    drafts = await drafts_across(provider, order_ref(number), lambda: rev_sim.set_status(number, "Under Review"))
    (draft,) = drafts
    assert draft.data["terminal"] is False
    assert draft.severity is Severity.INFO
    snapshot = await poll(provider, order_ref(number))
    info = provider.describe(order_ref(number), snapshot)
    assert (info.state, info.terminal) == ("Under Review", False)


@pytest.mark.parametrize("status", ["Complete", "Cancelled", "Canceled", "CANCELED", "complete"])
async def test_terminal_spellings(provider: RevProvider, rev_sim: RevSim, status: str) -> None:
    number = rev_sim.add_order(status=status)
    info = provider.describe(order_ref(number), await poll(provider, order_ref(number)))
    assert info.terminal is True


# ---- the simulator ---------------------------------------------------------------------


async def test_simulator_progression_reaches_terminal_states(provider: RevProvider, sim: Simulator) -> None:
    rev_sim: RevSim = sim["rev"]
    numbers = [rev_sim.add_order(status="Finding Transcriptionist") for _ in range(4)]
    numbers += [rev_sim.add_order(kind="caption") for _ in range(4)]
    old = {n: await poll(provider, order_ref(n)) for n in numbers}
    for _ in range(60):
        sim.step()
    types: set[str] = set()
    for n in numbers:
        new = await poll(provider, order_ref(n))
        assert provider.describe(order_ref(n), new).terminal
        types |= {d.type for d in provider.classify(order_ref(n), old[n], new, diff(old[n], new))}
    assert {"rev.order.state_changed", "rev.order.attachment_added"} <= types


async def test_control_routes_drive_an_order(
    sim: Simulator, session: aiohttp.ClientSession, provider: RevProvider
) -> None:
    control = f"{sim.base_url}/_sim/rev/orders"
    async with session.post(control, json={"ordernum": "TC9", "kind": "caption"}) as resp:
        assert resp.status == 201
    async with session.post(f"{control}/TC9/attachments", json={"kind": "caption", "name": "Caption.srt"}) as resp:
        assert resp.status == 201
    async with session.post(f"{control}/TC9/comments", json={"by": "Ops", "text": "hi"}) as resp:
        assert resp.status == 201
    async with session.post(f"{control}/TC9/status", json={"status": "Complete"}) as resp:
        assert resp.status == 200
    snap = await poll(provider, order_ref("TC9"))
    assert snap["status"] == "Complete"
    assert sorted(a["kind"] for a in snap["attachments"].values()) == ["caption", "media"]
    assert snap["comments"][0]["text"] == "hi"
    async with session.delete(f"{control}/TC9") as resp:
        assert resp.status == 200
    with pytest.raises(NotFound):
        await provider.fetch(order_ref("TC9"))


async def test_an_order_answered_byte_for_byte_as_before_is_unchanged_without_a_parse(
    redis: aioredis.Redis, provider: RevProvider, rev_sim: RevSim
) -> None:
    number = rev_sim.add_order()
    rkey = order_ref(number).key
    poller = Poller(Store(redis), {"rev": provider})
    await poller.store.add_watches([(rkey, WatchMeta(interval=60))])
    assert (await poller.poll([rkey]))[PollOutcome.BASELINE] == 1
    parsed = count_parses(provider)
    assert (await poller.poll([rkey]))[PollOutcome.UNCHANGED] == 1
    assert parsed == []
    rev_sim.set_status(number, "Complete")
    assert (await poller.poll([rkey]))[PollOutcome.CHANGED] == 1
    assert [orjson.loads(p)["status"] for p in parsed] == ["Complete"]
