"""The Artistree Human stand-in over real HTTP: auth, the order, the paginated list,
presigned URL churn, fault injection, control routes, the scripted progression."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from simulator.artistree import ALL_PROJECTS, DEFAULT_PROJECT_ID, ORDER_FIELDS, PERSONAL, STATES, ArtistreeSim
from simulator.core import Fault, Simulator
from simulator.registry import SIM_PROVIDERS, build_simulator

FIXTURE = Path(__file__).parent / "fixtures" / "artistree_order.json"
PREVIEW_FIELDS = [
    "order_id",
    "order_title",
    "creation_time",
    "order_state",
    "asset_preview_url",
    "project_name",
    "analysis_list",
    "tags",
]
BASIC = {"Authorization": aiohttp.encode_basic_auth("sim-client", "sim-secret")}
TERMINAL = {"Human Certified", "Failed", "Unsupported File"}


@pytest.fixture
def artistree(sim: Simulator) -> ArtistreeSim:
    return cast(ArtistreeSim, sim["artistree"])


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def auth(sim: Simulator, http: aiohttp.ClientSession) -> dict[str, str]:
    token = await get_token(sim, http)
    return {"Authorization": f"Bearer {token}"}


async def get_token(sim: Simulator, http: aiohttp.ClientSession) -> str:
    async with http.post(
        f"{sim.url('artistree')}/oauth2/token", data={"grant_type": "client_credentials"}, headers=BASIC
    ) as resp:
        assert resp.status == 200
        return str((await resp.json())["access_token"])


async def get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], params: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with http.get(url, headers=headers, params=params) as resp:
        body = await resp.read()
        return resp.status, json.loads(body) if body else None


async def list_all(
    sim: Simulator, http: aiohttp.ClientSession, auth: dict[str, str], params: dict[str, str]
) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        status, page = await get(http, f"{sim.url('artistree')}/v1/orders", auth, query)
        assert status == 200, page
        pages.append(page)
        if page["next_page_token"] is None:
            return pages
        query["page_token"] = page["next_page_token"]


def without_presigned(order: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in order.items() if k != "asset_preview_url"}
    rest["layers_info"] = [{k: v for k, v in layer.items() if k != "layer_url"} for layer in order["layers_info"]]
    return rest


# ---- OAuth2 token endpoint ----------------------------------------------------------------


async def test_token_with_basic_auth_is_a_bearer_token_for_an_hour(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{sim.url('artistree')}/oauth2/token", data={"grant_type": "client_credentials"}, headers=BASIC
    ) as resp:
        body = await resp.json()
    assert resp.status == 200
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer" and len(body["access_token"]) > 20
    assert artistree.tokens_issued == 1


async def test_token_accepts_credentials_as_form_fields(sim: Simulator, http: aiohttp.ClientSession) -> None:
    form = {"grant_type": "client_credentials", "client_id": "sim-client", "client_secret": "sim-secret"}
    async with http.post(f"{sim.url('artistree')}/oauth2/token", data=form) as resp:
        assert resp.status == 200
        assert "access_token" in await resp.json()


async def test_token_refuses_wrong_credentials_and_wrong_grant(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession
) -> None:
    url = f"{sim.url('artistree')}/oauth2/token"
    async with http.post(
        url,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": aiohttp.encode_basic_auth("sim-client", "nope")},
    ) as resp:
        assert (resp.status, await resp.json()) == (401, {"error": "invalid_client"})
    async with http.post(url, data={"grant_type": "client_credentials"}) as resp:
        assert resp.status == 401
    async with http.post(url, data={"grant_type": "password"}, headers=BASIC) as resp:
        assert (resp.status, await resp.json()) == (400, {"error": "unsupported_grant_type"})
    assert artistree.tokens_issued == 0


# ---- GET /v1/orders/{order_id} ---------------------------------------------------------------


async def test_order_refused_without_a_valid_token(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    order_id = artistree.add_order()["order_id"]
    url = f"{sim.url('artistree')}/v1/orders/{order_id}"
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic c2ltOnNpbQ=="}):
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 401
            assert await resp.read() == b""
    assert (await get(http, url, auth))[0] == 200
    artistree.expire_tokens()
    assert (await get(http, url, auth))[0] == 401


async def test_token_expires_after_its_lifetime(http: aiohttp.ClientSession) -> None:
    short = ArtistreeSim(token_lifetime=0)
    simulator = Simulator([short])
    await simulator.start()
    try:
        order_id = short.add_order()["order_id"]
        token = await get_token(simulator, http)
        status, _ = await get(
            http, f"{simulator.url('artistree')}/v1/orders/{order_id}", {"Authorization": f"Bearer {token}"}
        )
        assert status == 401
    finally:
        await simulator.stop()


async def test_unknown_order_is_404_with_detail(
    sim: Simulator, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    status, body = await get(http, f"{sim.url('artistree')}/v1/orders/4c1f7c55-0000-4000-8000-000000000000", auth)
    assert (status, body) == (404, {"detail": "Order not found"})


async def test_order_has_every_field_of_the_seed(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    fixture = json.loads(FIXTURE.read_text())
    order_id = artistree.add_order(title="Harbor Lights Poster v3", tags=["print"])["order_id"]
    async with http.get(f"{sim.url('artistree')}/v1/orders/{order_id}", headers=auth) as resp:
        raw = await resp.read()
    order = json.loads(raw)
    assert list(order) == list(ORDER_FIELDS) == list(fixture)
    assert len(order_id) == 36 and order["order_id"] == order_id
    assert (order["order_state"], order["order_title"], order["tags"]) == (
        "In Progress",
        "Harbor Lights Poster v3",
        ["print"],
    )
    assert set(order["project"]) == {"id", "name", "userRole"} and order["project"]["id"] == DEFAULT_PROJECT_ID
    assert set(order["annotations"][0]) == set(fixture["annotations"][0])
    assert set(order["annotations"][0]["target"]["selector"]["geometry"]) == {"bounds", "x", "y", "w", "h", "points"}
    assert set(order["analysis_list"][0]) == {"analysis_type", "analysis_passed"}
    assert all(set(layer) == {"layer_name", "layer_url"} for layer in order["layers_info"])
    assert 1800 < len(raw) < 4500


async def test_presigned_urls_differ_between_two_gets(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    order_id = artistree.add_order()["order_id"]
    url = f"{sim.url('artistree')}/v1/orders/{order_id}"
    (_, first), (_, second) = await get(http, url, auth), await get(http, url, auth)
    assert first["asset_preview_url"] != second["asset_preview_url"]
    assert "X-Amz-Signature=" in first["asset_preview_url"] and "X-Amz-Expires=" in first["asset_preview_url"]
    for a, b in zip(first["layers_info"], second["layers_info"], strict=True):
        assert a["layer_url"] != b["layer_url"]
    assert without_presigned(first) == without_presigned(second)


async def test_rotation_moves_the_asset_keys(sim: Simulator, artistree: ArtistreeSim) -> None:
    order = artistree.add_order()
    artistree.rotate_presigned_urls(order["order_id"])
    rotated = artistree.get(order["order_id"])
    assert "/v0/" in order["asset_preview_url"] and "/v1/" in rotated["asset_preview_url"]
    assert without_presigned(order) == without_presigned(rotated)


async def test_unsupported_file_has_no_preview(artistree: ArtistreeSim) -> None:
    assert artistree.add_order(state="Unsupported File")["asset_preview_url"] is None


# ---- GET /v1/orders ----------------------------------------------------------------------------


async def test_pagination_over_2500_orders_returns_each_once(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    ids = artistree.add_many(2500)
    pages = await list_all(sim, http, auth, {"project_id": ALL_PROJECTS, "limit": "1000"})
    assert [len(p["orders"]) for p in pages] == [1000, 1000, 500]
    seen = [o["order_id"] for p in pages for o in p["orders"]]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 2500
    assert all(p["order_previews"] is None for p in pages)
    assert pages[0]["order_stats"]["total_orders"] == 2500
    assert pages[0]["order_stats"]["total_in_progress"] == 2500


async def test_default_page_is_200_and_limit_is_capped(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    artistree.add_many(250)
    url = f"{sim.url('artistree')}/v1/orders"
    status, page = await get(http, url, auth, {"project_id": ALL_PROJECTS})
    assert status == 200 and len(page["orders"]) == 200 and page["next_page_token"]
    status, body = await get(http, url, auth, {"project_id": ALL_PROJECTS, "limit": "1001"})
    assert status == 422 and body["detail"][0]["loc"] == ["query", "limit"]
    status, body = await get(http, url, auth, {"limit": "10"})
    assert status == 400 and "project_id" in body["detail"]
    status, body = await get(http, url, auth, {"project_id": ALL_PROJECTS, "page_token": "garbage!"})
    assert (status, body) == (400, {"detail": "Invalid page_token"})


async def test_list_filters_by_project_and_computes_stats(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    other = "0d9e5f12-3c4b-4a7e-9f10-2b6c8d4e1a77"
    mine = artistree.add_many(5)
    artistree.set_state(mine[0], "Failed")
    artistree.set_state(mine[1], "Human Certified")
    artistree.add_many(3, project_id=other)
    personal = artistree.add_order(project_id=None)
    assert personal["project"] is None

    pages = await list_all(sim, http, auth, {"project_id": DEFAULT_PROJECT_ID})
    assert sorted(o["order_id"] for o in pages[0]["orders"]) == sorted(mine)
    assert pages[0]["project_names"] == []
    assert pages[0]["order_stats"] == {
        "total_in_progress": 3,
        "total_certified": 1,
        "total_action_required": 0,
        "total_reviewed": 0,
        "total_failed": 1,
        "total_unsupported": 0,
        "total_orders": 5,
    }
    pages = await list_all(sim, http, auth, {"project_id": PERSONAL})
    assert [o["order_id"] for o in pages[0]["orders"]] == [personal["order_id"]]
    pages = await list_all(sim, http, auth, {"project_id": ALL_PROJECTS})
    names = pages[0]["project_names"]
    assert names[0] == PERSONAL and names[1:] == sorted(names[1:]) and len(names) >= 4
    assert pages[0]["order_stats"]["total_orders"] == 9 and len(pages[0]["orders"]) == 9


async def test_pages_neither_skip_nor_repeat_when_orders_change_between_pages(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    ids = artistree.add_many(30)
    url = f"{sim.url('artistree')}/v1/orders"
    _, first = await get(http, url, auth, {"project_id": ALL_PROJECTS, "limit": "10"})
    artistree.remove(ids[3])
    artistree.remove(ids[10])
    late = artistree.add_order()["order_id"]
    rest = await list_all(
        sim, http, auth, {"project_id": ALL_PROJECTS, "limit": "10", "page_token": first["next_page_token"]}
    )
    later = [o["order_id"] for p in rest for o in p["orders"]]
    assert [o["order_id"] for o in first["orders"]] == ids[:10]
    assert later == [*ids[11:], late]


async def test_preview_pages_have_the_seed_preview_shape(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    ids = artistree.add_many(25)
    pages = await list_all(sim, http, auth, {"project_id": ALL_PROJECTS, "limit": "10", "preview": "true"})
    assert [len(p["order_previews"]) for p in pages] == [10, 10, 5]
    previews = [o for p in pages for o in p["order_previews"]]
    assert all(p["orders"] is None for p in pages)
    assert [o["order_id"] for o in previews] == ids
    assert all(list(o) == PREVIEW_FIELDS for o in previews)
    assert previews[0]["project_name"] == "Spring Campaign 2026"


# ---- fault injection -----------------------------------------------------------------------------


async def test_faults_429_500_malformed_and_delay(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    order_id = artistree.add_order()["order_id"]
    path = f"/v1/orders/{order_id}"
    url = sim.url("artistree") + path

    sim.faults.add("artistree", path, Fault(status=429, retry_after=7, times=1))
    async with http.get(url, headers=auth) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "7"
    assert (await get(http, url, auth))[0] == 200  # times=1: used up

    sim.faults.add("artistree", path, Fault(status=500, body=b'{"detail": "boom"}', times=1))
    assert await get(http, url, auth) == (500, {"detail": "boom"})

    sim.faults.add("artistree", path, Fault(malformed=True, times=1))
    async with http.get(url, headers=auth) as resp:
        assert resp.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await resp.read())

    sim.faults.add("artistree", path, Fault(delay=0.3, times=1))
    started = time.monotonic()
    assert (await get(http, url, auth))[0] == 200
    assert time.monotonic() - started >= 0.3


async def test_fault_over_http_and_cleared(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    artistree.add_many(3)
    async with http.post(
        f"{sim.base_url}/_sim/faults", json={"provider": "artistree", "path": "/v1/orders", "status": 503}
    ) as resp:
        assert resp.status == 201
    url = f"{sim.url('artistree')}/v1/orders"
    assert (await get(http, url, auth, {"project_id": ALL_PROJECTS}))[0] == 503
    async with http.delete(f"{sim.base_url}/_sim/faults", params={"provider": "artistree"}) as resp:
        assert resp.status == 200
    assert (await get(http, url, auth, {"project_id": ALL_PROJECTS}))[0] == 200


# ---- control routes ------------------------------------------------------------------------------


async def test_control_routes_drive_an_order(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    ctl = f"{sim.base_url}/_sim/artistree"
    async with http.post(f"{ctl}/orders", json={"title": "Poster v3", "tags": ["x"], "confidence": 0.5}) as resp:
        assert resp.status == 201
        order = await resp.json()
    order_id = order["order_id"]
    assert (order["order_title"], order["tags"], order["confidence"]) == ("Poster v3", ["x"], 0.5)
    async with http.post(f"{ctl}/orders/{order_id}/state", json={"state": "Failed"}) as resp:
        assert (await resp.json())["order_state"] == "Failed"
    async with http.post(f"{ctl}/orders/{order_id}/state", json={"state": "Melted"}) as resp:
        assert resp.status == 400
    async with http.patch(f"{ctl}/orders/{order_id}", json={"reviewed_by": "qa@example.com"}) as resp:
        assert (await resp.json())["reviewed_by"] == "qa@example.com"
    async with http.post(f"{ctl}/orders/{order_id}/rotate") as resp:
        assert "/v1/preview" in (await resp.json())["asset_preview_url"]
    async with http.get(f"{ctl}/stats") as resp:
        stats = await resp.json()
    assert stats["orders"] == 1 and stats["tokens_issued"] == 1 and stats["states"]["Failed"] == 1
    async with http.post(f"{ctl}/tokens/expire") as resp:
        assert resp.status == 200
    assert (await get(http, f"{sim.url('artistree')}/v1/orders/{order_id}", auth))[0] == 401
    async with http.delete(f"{ctl}/orders/{order_id}") as resp:
        assert resp.status == 200
    async with http.delete(f"{ctl}/orders/{order_id}") as resp:
        assert resp.status == 404
    assert order_id not in artistree


async def test_update_refuses_unknown_fields(artistree: ArtistreeSim) -> None:
    order_id = artistree.add_order()["order_id"]
    with pytest.raises(ValueError):
        artistree.update(order_id, colour="red")
    with pytest.raises(ValueError):
        artistree.add_order(colour="red")
    assert len(artistree) == 1
    updated = artistree.update(order_id, analysis_failed_items=["Line Art"], order_state="Failed")
    assert updated["analysis_failed_items"] == ["Line Art"] and updated["order_state"] == "Failed"


# ---- scripted progression ------------------------------------------------------------------------


async def test_step_moves_orders_along_plausible_paths(artistree: ArtistreeSim) -> None:
    artistree.add_many(20)
    rng = random.Random(3)
    seen_states: set[str] = set()
    for _ in range(60):
        before = {oid: artistree.state_of(oid) for oid in artistree.order_ids}
        lines = artistree.step(rng)
        assert lines and all(line.startswith("artistree: ") for line in lines)
        for oid, state in before.items():
            if state in TERMINAL:
                assert artistree.state_of(oid) == state, "a terminal order moved"
        seen_states.update(artistree.state_of(oid) for oid in artistree.order_ids)
    assert seen_states >= {"Human Certified", "Failed", "Action Required", "Reviewed"}
    assert seen_states <= set(STATES)
    for oid in artistree.order_ids:
        order = artistree.get(oid)
        if order["order_state"] == "Failed":
            assert order["analysis_failed_items"]
        if order["order_state"] == "Human Certified":
            assert order["confidence"] >= 0.9
    assert len(artistree) > 20  # new orders arrived


async def test_simulator_step_route_runs_the_progression(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession
) -> None:
    artistree.add_many(5)
    async with http.post(f"{sim.base_url}/_sim/step") as resp:
        changed = (await resp.json())["changed"]
    assert changed and all("artistree" in line for line in changed)


# ---- scale, registry, entry point ----------------------------------------------------------------


async def test_add_many_holds_100k_orders_and_serves_the_last(
    sim: Simulator, artistree: ArtistreeSim, http: aiohttp.ClientSession, auth: dict[str, str]
) -> None:
    started = time.monotonic()
    ids = artistree.add_many(100_000)
    assert time.monotonic() - started < 10
    assert len(artistree) == 100_000 and len(set(ids)) == 100_000
    status, order = await get(http, f"{sim.url('artistree')}/v1/orders/{ids[-1]}", auth)
    assert status == 200 and order["order_id"] == ids[-1]
    status, page = await get(
        http, f"{sim.url('artistree')}/v1/orders", auth, {"project_id": ALL_PROJECTS, "limit": "1000"}
    )
    assert status == 200 and page["order_stats"]["total_orders"] == 100_000


def test_build_simulator_seeds_orders_and_refuses_unknown_names() -> None:
    simulator = build_simulator(["artistree"], orders_per_provider=5)
    assert len(cast(ArtistreeSim, simulator["artistree"])) == 5
    assert set(build_simulator().providers) == set(SIM_PROVIDERS)
    with pytest.raises(ValueError, match="unknown"):
        build_simulator(["nope"])


async def test_standalone_entry_point_prints_its_url_and_serves(http: aiohttp.ClientSession) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator",
        "--port",
        "0",
        "--providers",
        "artistree",
        "--orders",
        "3",
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
        base = line.strip().rsplit(" ", 1)[-1]
        assert line.startswith("simulator listening on http://127.0.0.1:")
        async with http.get(f"{base}/_sim/artistree/stats") as resp:
            assert (await resp.json())["orders"] == 3
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), timeout=10) == 0
