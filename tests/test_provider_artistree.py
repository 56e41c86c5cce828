"""providers/artistree.py against the simulator over real HTTP: the token, errors, fetch and scan
(its spec on plain values: tests/pure/test_provider_artistree.py)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aiohttp
import orjson
import pytest

from core.diff import diff
from model.errors import MalformedPayload, NotFound, RateLimited, Unauthorized, Unavailable
from model.resources import ListedItems, ResourceRef
from providers.artistree import ArtistreeProvider, ArtistreeSettings
from simulator.artistree import ALL_PROJECTS, ArtistreeSim
from simulator.core import Fault, Simulator

SECRET = "sim-secret"


@pytest.fixture
def artistree(sim: Simulator) -> ArtistreeSim:
    return cast(ArtistreeSim, sim["artistree"])


def make_provider(sim: Simulator, session: aiohttp.ClientSession, **overrides: Any) -> ArtistreeProvider:
    settings = ArtistreeSettings(
        base_url=sim.url("artistree"),
        token_url=sim.url("artistree") + "/oauth2/token",
        client_id="sim-client",
        client_secret=overrides.pop("client_secret", SECRET),
        **overrides,
    )
    return ArtistreeProvider(settings, session)


@pytest.fixture
def provider(sim: Simulator, session: aiohttp.ClientSession) -> ArtistreeProvider:
    return make_provider(sim, session, timeout=5.0)


def ref(order_id: str) -> ResourceRef:
    return ResourceRef("artistree", "order", order_id)


# ---- fetching over HTTP ------------------------------------------------------------------------


async def test_fetch_returns_the_order(provider: ArtistreeProvider, artistree: ArtistreeSim) -> None:
    order_id = artistree.add_order(title="Harbor Lights Poster v3")["order_id"]
    payload = await provider.fetch(ref(order_id))
    assert payload["order_id"] == order_id and payload["order_title"] == "Harbor Lights Poster v3"
    assert payload["order_state"] == "In Progress"


async def test_token_is_fetched_once_and_cached(provider: ArtistreeProvider, artistree: ArtistreeSim) -> None:
    ids = artistree.add_many(10)
    await asyncio.gather(*(provider.fetch(ref(i)) for i in ids))  # concurrent first use: one token
    for order_id in ids * 3:
        await provider.fetch(ref(order_id))
    assert artistree.tokens_issued == 1


async def test_expired_token_is_refreshed_once(provider: ArtistreeProvider, artistree: ArtistreeSim) -> None:
    order_id = artistree.add_order()["order_id"]
    await provider.fetch(ref(order_id))
    artistree.expire_tokens()
    payload = await provider.fetch(ref(order_id))
    assert payload["order_id"] == order_id
    assert artistree.tokens_issued == 2
    await provider.fetch(ref(order_id))
    assert artistree.tokens_issued == 2


async def test_concurrent_fetches_after_expiry_share_one_refresh(
    provider: ArtistreeProvider, artistree: ArtistreeSim
) -> None:
    ids = artistree.add_many(40)
    await provider.fetch(ref(ids[0]))
    artistree.expire_tokens()
    payloads = await asyncio.gather(*(provider.fetch(ref(i)) for i in ids))
    assert [p["order_id"] for p in payloads] == ids
    assert artistree.tokens_issued == 2


async def test_wrong_client_secret_is_unauthorized_without_leaking_it(
    sim: Simulator, session: aiohttp.ClientSession, artistree: ArtistreeSim
) -> None:
    secret = "wrong-but-very-secret-2f9c"
    bad = make_provider(sim, session, client_secret=secret)
    order_id = artistree.add_order()["order_id"]
    with pytest.raises(Unauthorized) as caught:
        await bad.fetch(ref(order_id))
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert caught.value.status == 401
    assert artistree.tokens_issued == 0


async def test_unknown_order_is_not_found(provider: ArtistreeProvider) -> None:
    with pytest.raises(NotFound) as caught:
        await provider.fetch(ref("9a1b2c3d-0000-4000-8000-000000000000"))
    assert caught.value.status == 404 and "Order not found" in str(caught.value)


async def test_429_is_rate_limited_with_retry_after(
    sim: Simulator, provider: ArtistreeProvider, artistree: ArtistreeSim
) -> None:
    order_id = artistree.add_order()["order_id"]
    sim.faults.add("artistree", f"/v1/orders/{order_id}", Fault(status=429, retry_after=7, times=1))
    with pytest.raises(RateLimited) as caught:
        await provider.fetch(ref(order_id))
    assert caught.value.retry_after == 7.0


async def test_500_is_unavailable(sim: Simulator, provider: ArtistreeProvider, artistree: ArtistreeSim) -> None:
    order_id = artistree.add_order()["order_id"]
    sim.faults.add("artistree", f"/v1/orders/{order_id}", Fault(status=500, times=1))
    with pytest.raises(Unavailable) as caught:
        await provider.fetch(ref(order_id))
    assert caught.value.status == 500
    assert (await provider.fetch(ref(order_id)))["order_id"] == order_id


async def test_slow_answer_past_the_timeout_is_unavailable(
    sim: Simulator, session: aiohttp.ClientSession, artistree: ArtistreeSim
) -> None:
    impatient = make_provider(sim, session, timeout=0.2)
    order_id = artistree.add_order()["order_id"]
    await impatient.fetch(ref(order_id))  # the token is fetched before the fault applies
    sim.faults.add("artistree", f"/v1/orders/{order_id}", Fault(delay=0.6, times=1))
    with pytest.raises(Unavailable, match="timeout"):
        await impatient.fetch(ref(order_id))


async def test_malformed_body_is_malformed_payload(
    sim: Simulator, provider: ArtistreeProvider, artistree: ArtistreeSim
) -> None:
    order_id = artistree.add_order()["order_id"]
    sim.faults.add("artistree", f"/v1/orders/{order_id}", Fault(malformed=True, times=1))
    with pytest.raises(MalformedPayload):
        await provider.fetch(ref(order_id))


async def test_token_endpoint_down_is_unavailable(sim: Simulator, provider: ArtistreeProvider) -> None:
    sim.faults.add("artistree", "/oauth2/token", Fault(status=503, times=1))
    with pytest.raises(Unavailable):
        await provider.fetch(ref("9a1b2c3d-0000-4000-8000-000000000000"))


# ---- normalize ---------------------------------------------------------------------------------


async def test_unchanged_order_normalizes_to_equal_snapshots(
    provider: ArtistreeProvider, artistree: ArtistreeSim
) -> None:
    order_id = artistree.add_order()["order_id"]
    first, second = await provider.fetch(ref(order_id)), await provider.fetch(ref(order_id))
    assert first["asset_preview_url"] != second["asset_preview_url"]
    artistree.rotate_presigned_urls(order_id)
    third = await provider.fetch(ref(order_id))
    snaps = [provider.normalize(ref(order_id), p) for p in (first, second, third)]
    assert snaps[0] == snaps[1] == snaps[2]
    assert "asset_preview_url" not in snaps[0]
    assert snaps[0]["layers_info"] and all(set(layer) == {"layer_name"} for layer in snaps[0]["layers_info"])


async def test_a_real_change_survives_normalization(provider: ArtistreeProvider, artistree: ArtistreeSim) -> None:
    order_id = artistree.add_order()["order_id"]
    before = provider.normalize(ref(order_id), await provider.fetch(ref(order_id)))
    artistree.set_state(order_id, "Failed")
    after = provider.normalize(ref(order_id), await provider.fetch(ref(order_id)))
    assert [c.as_dict() for c in diff(before, after)] == [
        {"path": "/order_state", "old": "In Progress", "new": "Failed"}
    ]


# ---- scan --------------------------------------------------------------------------------------


async def test_scan_over_2500_orders_yields_every_one(provider: ArtistreeProvider, artistree: ArtistreeSim) -> None:
    ids = artistree.add_many(2500)
    pages = [
        page
        async for page in provider.scan(ResourceRef("artistree", "scan", ALL_PROJECTS), {"project_id": ALL_PROJECTS})
    ]
    assert [len(p) for p in pages] == [1000, 1000, 500]
    assert all(isinstance(p, ListedItems) and p.kind == "order" for p in pages)
    listed = [item for page in pages for item in page.items]  # type: ignore[union-attr]
    seen = [rid for rid, _ in listed]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 2500
    assert all(orjson.loads(raw)["order_id"] == rid for rid, raw in listed[:10])
    assert artistree.tokens_issued == 1


async def test_scan_of_one_project(provider: ArtistreeProvider, artistree: ArtistreeSim) -> None:
    other = "0d9e5f12-3c4b-4a7e-9f10-2b6c8d4e1a77"
    artistree.add_many(4)
    theirs = artistree.add_many(3, project_id=other)
    pages = [page async for page in provider.scan(ResourceRef("artistree", "scan", other), {"project_id": other})]
    assert sorted(rid for page in pages for rid, _ in page.items) == sorted(theirs)  # type: ignore[union-attr]
