"""Sartiq: token auth, errors, scan, normalize and classify, against the simulator over real HTTP (the
spec on the seed's samples, without a server: tests/pure/test_provider_sartiq.py)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import SecretStr

from core.diff import diff
from model.errors import MalformedPayload, NotFound, ProviderError, RateLimited, Unauthorized, Unavailable
from model.events import EventDraft, Severity
from model.resources import ResourceRef, Snapshot
from providers.sartiq import (
    SartiqProvider,
    SartiqSettings,
)
from simulator.core import Fault, SimProvider, Simulator
from simulator.sartiq import SHOT_TYPES, SartiqSim

FIXTURES = Path(__file__).parent / "fixtures"
PASSWORD = "sim-password"
LOGIN = "/api/v1/login/access-token"
SHOTS = list(SHOT_TYPES.values())


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


@pytest.fixture
def sim_providers() -> list[SimProvider]:
    return [SartiqSim()]


@pytest.fixture
def sartiq(sim: Simulator) -> SartiqSim:
    stand_in: SartiqSim = sim["sartiq"]
    return stand_in


def make_provider(
    sim: Simulator, session: aiohttp.ClientSession, password: str = PASSWORD, **extra: Any
) -> SartiqProvider:
    settings = SartiqSettings(
        base_url=sim.url("sartiq"), username="sim@example.com", password=SecretStr(password), **extra
    )
    return SartiqProvider(settings, session)


@pytest.fixture
def provider(sim: Simulator, session: aiohttp.ClientSession) -> SartiqProvider:
    return make_provider(sim, session)


def task_ref(task_id: str) -> ResourceRef:
    return ResourceRef("sartiq", "upload_task", task_id)


def latest_ref(set_design_id: str, subject_id: str) -> ResourceRef:
    return ResourceRef("sartiq", "latest_upload", f"{set_design_id}/{subject_id}")


def design_ref(set_design_id: str) -> ResourceRef:
    return ResourceRef("sartiq", "set_design", set_design_id)


async def poll(provider: SartiqProvider, ref: ResourceRef) -> Snapshot:
    return provider.normalize(ref, await provider.fetch(ref))


async def drafts_across(
    provider: SartiqProvider, ref: ResourceRef, change: Callable[[], object]
) -> list[EventDraft]:
    """fetch → normalize, apply `change` at the simulator, fetch → normalize → diff → classify."""
    old = await poll(provider, ref)
    change()
    new = await poll(provider, ref)
    return provider.classify(ref, old, new, diff(old, new))


def new_task(sartiq: SartiqSim, total_items: int = 4) -> tuple[str, str, str]:
    """(set design id, subject id, task id) of a fresh PENDING upload."""
    set_design_id = sartiq.add_set_design("Beach house")
    subject_id = "subject-1"
    return set_design_id, subject_id, sartiq.add_task(set_design_id, subject_id, total_items=total_items)


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


# ---- auth ----------------------------------------------------------------------------------


async def test_token_is_fetched_once_and_cached(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    _, _, task_id = new_task(sartiq)
    for _ in range(3):
        assert (await provider.fetch(task_ref(task_id)))["id"] == task_id
    assert sartiq.token_requests == 1


async def test_expired_token_is_refreshed_once(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    _, _, task_id = new_task(sartiq)
    await provider.fetch(task_ref(task_id))
    sartiq.expire_tokens()
    assert (await provider.fetch(task_ref(task_id)))["id"] == task_id
    assert sartiq.token_requests == 2
    await provider.fetch(task_ref(task_id))
    assert sartiq.token_requests == 2


async def test_wrong_password_is_unauthorized_without_the_password(
    sim: Simulator, session: aiohttp.ClientSession, sartiq: SartiqSim
) -> None:
    _, _, task_id = new_task(sartiq)
    provider = make_provider(sim, session, password="hunter2-wrong-secret")
    with pytest.raises(Unauthorized) as caught:
        await provider.fetch(task_ref(task_id))
    message = str(caught.value)
    assert "hunter2-wrong-secret" not in message
    assert "Incorrect email or password" in message
    assert "sim@example.com" in message
    assert caught.value.status == 400


async def test_a_login_error_that_echoes_the_password_is_scrubbed(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    provider = make_provider(sim, session, password="hunter2-wrong-secret")
    body = b'{"detail": "password hunter2-wrong-secret is not valid"}'
    sim.faults.add("sartiq", LOGIN, Fault(status=401, body=body, times=1))
    with pytest.raises(Unauthorized) as caught:
        await provider.auth.new_token(provider.session)
    assert "hunter2-wrong-secret" not in str(caught.value)
    assert "***" in str(caught.value)


async def test_token_lifetime_comes_from_expires_in_then_the_jwt(
    sim: Simulator, provider: SartiqProvider
) -> None:
    sim.faults.add(
        "sartiq", LOGIN, Fault(status=200, body=b'{"access_token": "tok", "expires_in": 120}', times=1)
    )
    assert await provider.auth.new_token(provider.session) == ("tok", 120.0)
    token = jwt({"sub": "user", "exp": int(time.time()) + 600})
    body = orjson.dumps({"access_token": token, "token_type": "bearer"})
    sim.faults.add("sartiq", LOGIN, Fault(status=200, body=body, times=1))
    got, lifetime = await provider.auth.new_token(provider.session)
    assert got == token and 590 <= lifetime <= 600
    assert (await provider.auth.new_token(provider.session))[1] == 3600.0  # the simulator's opaque token: the setting


async def test_login_without_a_token_is_unauthorized(sim: Simulator, provider: SartiqProvider) -> None:
    sim.faults.add("sartiq", LOGIN, Fault(status=200, body=b'{"token_type": "bearer"}', times=1))
    with pytest.raises(Unauthorized, match="without an access_token"):
        await provider.auth.new_token(provider.session)


async def test_simulator_requires_a_bearer_token(
    sim: Simulator, session: aiohttp.ClientSession, sartiq: SartiqSim
) -> None:
    _, _, task_id = new_task(sartiq)
    url = f"{sim.url('sartiq')}/api/v1/set-designs/upload-tasks/{task_id}"
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 401
            assert await resp.json() == {"detail": "Could not validate credentials"}


# ---- errors ----------------------------------------------------------------------------------


async def test_unknown_task_is_not_found_with_the_detail(provider: SartiqProvider) -> None:
    with pytest.raises(NotFound) as caught:
        await provider.fetch(task_ref("00000000-0000-0000-0000-000000000000"))
    assert caught.value.status == 404
    assert "Upload task not found" in str(caught.value)


async def test_latest_upload_without_a_task_is_not_found(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    set_design_id = sartiq.add_set_design("Empty")
    with pytest.raises(NotFound, match="No upload task found"):
        await provider.fetch(latest_ref(set_design_id, "nobody"))
    with pytest.raises(NotFound, match="Set design not found"):
        await provider.fetch(design_ref("missing"))


async def test_latest_upload_id_needs_two_parts(provider: SartiqProvider) -> None:
    with pytest.raises(ProviderError, match="set_design_id"):
        await provider.fetch(ResourceRef("sartiq", "latest_upload", "only-one-part"))


async def test_rate_limit_carries_retry_after(
    provider: SartiqProvider, sim: Simulator, sartiq: SartiqSim
) -> None:
    _, _, task_id = new_task(sartiq)
    path = f"/api/v1/set-designs/upload-tasks/{task_id}"
    sim.faults.add("sartiq", path, Fault(status=429, retry_after=7, body=b'{"detail": "Slow down"}', times=1))
    with pytest.raises(RateLimited) as caught:
        await provider.fetch(task_ref(task_id))
    assert caught.value.retry_after == 7
    assert "Slow down" in str(caught.value)
    assert (await provider.fetch(task_ref(task_id)))["id"] == task_id


async def test_server_error_is_unavailable(
    provider: SartiqProvider, sim: Simulator, sartiq: SartiqSim
) -> None:
    _, _, task_id = new_task(sartiq)
    sim.faults.add("sartiq", f"/api/v1/set-designs/upload-tasks/{task_id}", Fault(status=500, times=1))
    with pytest.raises(Unavailable):
        await provider.fetch(task_ref(task_id))


async def test_login_server_error_is_unavailable(provider: SartiqProvider, sim: Simulator) -> None:
    sim.faults.add("sartiq", LOGIN, Fault(status=503, times=1))
    with pytest.raises(Unavailable):
        await provider.auth.new_token(provider.session)


async def test_malformed_body_is_malformed_payload(
    provider: SartiqProvider, sim: Simulator, sartiq: SartiqSim
) -> None:
    _, _, task_id = new_task(sartiq)
    sim.faults.add("sartiq", f"/api/v1/set-designs/upload-tasks/{task_id}", Fault(malformed=True, times=1))
    with pytest.raises(MalformedPayload):
        await provider.fetch(task_ref(task_id))


# ---- scan ------------------------------------------------------------------------------------


async def test_scan_pages_with_skip_and_limit_and_lists_each_set_design_once(
    sim: Simulator, session: aiohttp.ClientSession, sartiq: SartiqSim
) -> None:
    provider = make_provider(sim, session, page_size=3)
    ids = {sartiq.add_set_design(f"Design {i}") for i in range(8)}
    before = sim.requests["sartiq"]
    pages = [page async for page in provider.scan(ResourceRef("sartiq", "scan", "all"), {})]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert sim.requests["sartiq"] - before == 1 + 3  # one login, three pages
    refs = [item.ref for page in pages for item in page]
    assert sorted(r.id for r in refs) == sorted(ids)
    assert {(r.provider, r.kind) for r in refs} == {("sartiq", "set_design")}
    assert all(item.payload["id"] == item.ref.id for page in pages for item in page)


async def test_scan_of_an_exact_multiple_ends_on_an_empty_page(
    sim: Simulator, session: aiohttp.ClientSession, sartiq: SartiqSim
) -> None:
    provider = make_provider(sim, session, page_size=3)
    for i in range(6):
        sartiq.add_set_design(f"Design {i}")
    pages = [page async for page in provider.scan(ResourceRef("sartiq", "scan", "all"), {})]
    assert [len(p) for p in pages] == [3, 3, 0]


async def test_scan_filters_by_organization(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    mine = sartiq.add_set_design("Mine", organization_id="org-1")
    sartiq.add_set_design("Theirs", organization_id="org-2")
    spec = {"organization_id": "org-1"}
    pages = [
        page async for page in provider.scan(ResourceRef("sartiq", "scan", "organization_id=org-1"), spec)
    ]
    assert [item.ref.id for page in pages for item in page] == [mine]


async def test_scan_of_an_empty_account_ends(provider: SartiqProvider) -> None:
    pages = [page async for page in provider.scan(ResourceRef("sartiq", "scan", "all"), {})]
    assert pages == [[]]


# ---- upload tasks: fetch → normalize → diff → classify ------------------------------------------


async def test_task_start_is_state_changed(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    _, _, task_id = new_task(sartiq)
    drafts = await drafts_across(
        provider, task_ref(task_id), lambda: sartiq.advance_task(task_id, processed=0)
    )
    assert [d.type for d in drafts] == ["sartiq.upload_task.state_changed"]
    (draft,) = drafts
    assert draft.severity is Severity.INFO
    assert draft.summary == f"Upload task “{task_id}”: PENDING → PROCESSING"
    assert {k: draft.data[k] for k in ("from", "to", "terminal", "outcome", "task_id")} == {
        "from": "PENDING",
        "to": "PROCESSING",
        "terminal": False,
        "outcome": None,
        "task_id": task_id,
    }
    assert {"path": "/status", "old": "PENDING", "new": "PROCESSING"} in draft.data["changes"]


async def test_progress_fires_only_across_a_step(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    _, _, task_id = new_task(sartiq, total_items=10)
    sartiq.advance_task(task_id, processed=1)  # 10 %
    ref = task_ref(task_id)
    assert (
        await drafts_across(provider, ref, lambda: sartiq.advance_task(task_id, processed=1)) == []
    )  # 10 → 20 %
    drafts = await drafts_across(
        provider, ref, lambda: sartiq.advance_task(task_id, processed=1)
    )  # 20 → 30 %
    assert [d.type for d in drafts] == ["sartiq.upload_task.progress_changed"]
    (draft,) = drafts
    assert draft.severity is Severity.INFO
    assert draft.summary == f"Upload task “{task_id}”: progress 20 % → 30 %"
    assert draft.data == {
        "previous": 20.0,
        "progress": 30.0,
        "step": 25,
        "processed_items": 3,
        "total_items": 10,
        "status": "PROCESSING",
        "task_id": task_id,
    }


async def test_completion_is_state_changed_and_progress_to_100(
    provider: SartiqProvider, sartiq: SartiqSim
) -> None:
    _, _, task_id = new_task(sartiq, total_items=4)
    sartiq.advance_task(task_id, processed=3)  # 75 %
    drafts = await drafts_across(
        provider, task_ref(task_id), lambda: sartiq.finish_task(task_id, "completed")
    )
    assert [(d.type, d.severity) for d in drafts] == [
        ("sartiq.upload_task.state_changed", Severity.INFO),
        ("sartiq.upload_task.progress_changed", Severity.INFO),
    ]
    assert drafts[0].data["terminal"] is True and drafts[0].data["outcome"] == "success"
    assert drafts[1].data["progress"] == 100.0


async def test_skipped_images_are_a_warning(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    _, _, task_id = new_task(sartiq, total_items=100)
    sartiq.advance_task(task_id, processed=1)
    drafts = await drafts_across(
        provider, task_ref(task_id), lambda: sartiq.advance_task(task_id, processed=2, skipped=2)
    )
    assert [d.type for d in drafts] == ["sartiq.upload_task.images_skipped"]
    (draft,) = drafts
    assert draft.severity is Severity.WARNING
    assert draft.summary == f"Upload task “{task_id}”: 2 images skipped (2 in all)"
    assert draft.data == {
        "previous": 0,
        "images_skipped": 2,
        "added": 2,
        "images_processed": 1,
        "total_items": 100,
        "task_id": task_id,
    }


async def test_failure_with_an_error_is_critical(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    _, _, task_id = new_task(sartiq, total_items=8)
    sartiq.advance_task(task_id, processed=1)
    drafts = await drafts_across(
        provider, task_ref(task_id), lambda: sartiq.finish_task(task_id, "failed", "ZIP archive is corrupted")
    )
    assert [(d.type, d.severity) for d in drafts] == [
        ("sartiq.upload_task.state_changed", Severity.CRITICAL),
        ("sartiq.upload_task.error", Severity.CRITICAL),
    ]
    state, error = drafts
    assert (state.data["to"], state.data["terminal"], state.data["outcome"]) == ("FAILED", True, "failure")
    assert error.data == {"error_message": "ZIP archive is corrupted", "status": "FAILED", "task_id": task_id}
    assert error.summary == f"Upload task “{task_id}”: error: ZIP archive is corrupted"


async def test_latest_upload_uses_its_own_event_types(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    set_design_id, subject_id, task_id = new_task(sartiq, total_items=4)
    ref = latest_ref(set_design_id, subject_id)
    sartiq.advance_task(task_id, processed=1)

    def trouble() -> None:
        sartiq.advance_task(task_id, processed=1, skipped=1)
        sartiq.finish_task(task_id, "failed", "Storage quota exceeded")

    drafts = await drafts_across(provider, ref, trouble)
    assert [(d.type, d.severity) for d in drafts] == [
        ("sartiq.latest_upload.state_changed", Severity.CRITICAL),
        ("sartiq.latest_upload.progress_changed", Severity.INFO),
        ("sartiq.latest_upload.images_skipped", Severity.WARNING),
        ("sartiq.latest_upload.error", Severity.CRITICAL),
    ]
    assert drafts[0].summary == f"Latest upload “{set_design_id}/{subject_id}”: PROCESSING → FAILED"
    info = provider.describe(ref, await poll(provider, ref))
    assert (info.state, info.terminal, info.project) == ("FAILED", True, set_design_id)
    assert info.url is not None and info.url.endswith(f"/base-images/upload-task?subject_id={subject_id}")


async def test_latest_upload_follows_a_new_upload(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    set_design_id, subject_id, first = new_task(sartiq, total_items=4)
    sartiq.advance_task(first, processed=4, skipped=1)
    sartiq.finish_task(first, "completed")
    second: list[str] = []
    drafts = await drafts_across(
        provider,
        latest_ref(set_design_id, subject_id),
        lambda: second.append(sartiq.add_task(set_design_id, subject_id, total_items=4)),
    )
    assert [d.type for d in drafts] == ["sartiq.latest_upload.new_task", "sartiq.latest_upload.state_changed"]
    assert drafts[0].data == {"previous_task_id": first, "task_id": second[0], "status": "PENDING"}
    assert (drafts[1].data["from"], drafts[1].data["to"], drafts[1].data["terminal"]) == (
        "COMPLETED",
        "PENDING",
        False,
    )


# ---- status spellings -------------------------------------------------------------------------


async def test_unknown_status_is_open(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    _, _, task_id = new_task(sartiq)
    drafts = await drafts_across(
        provider, task_ref(task_id), lambda: sartiq.set_status(task_id, "VALIDATING")
    )
    (draft,) = drafts
    assert (draft.severity, draft.data["terminal"], draft.data["outcome"]) == (Severity.INFO, False, None)
    info = provider.describe(task_ref(task_id), await poll(provider, task_ref(task_id)))
    assert (info.state, info.terminal) == ("VALIDATING", False)


@pytest.mark.parametrize(
    ("status", "severity"),
    [
        ("SUCCESS", Severity.INFO),
        ("Failed", Severity.CRITICAL),
        ("done", Severity.INFO),
        ("CANCELED", Severity.CRITICAL),
    ],
)
async def test_status_spellings_are_recognised(
    provider: SartiqProvider, sartiq: SartiqSim, status: str, severity: Severity
) -> None:
    _, _, task_id = new_task(sartiq)
    (draft,) = await drafts_across(provider, task_ref(task_id), lambda: sartiq.set_status(task_id, status))
    assert (draft.severity, draft.data["terminal"]) == (severity, True)
    assert provider.describe(task_ref(task_id), await poll(provider, task_ref(task_id))).terminal is True


async def test_completed_at_makes_a_task_terminal(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    _, _, task_id = new_task(sartiq)
    sartiq.set_status(task_id, "VALIDATING")
    drafts = await drafts_across(
        provider, task_ref(task_id), lambda: sartiq.set_status(task_id, "VALIDATING", completed=True)
    )
    (draft,) = drafts
    assert draft.type == "sartiq.upload_task.state_changed"
    assert draft.summary == f"Upload task “{task_id}”: VALIDATING, completed"
    assert draft.data["terminal"] is True and draft.data["completed_at"]
    assert provider.describe(task_ref(task_id), await poll(provider, task_ref(task_id))).terminal is True


# ---- set designs ---------------------------------------------------------------------------------


async def test_completed_upload_adds_base_images_and_a_subject(
    provider: SartiqProvider, sartiq: SartiqSim
) -> None:
    set_design_id = sartiq.add_set_design("Beach house", base_images=[("subject-0", SHOTS[0])])
    task_id = sartiq.add_task(set_design_id, "subject-1", total_items=2)
    drafts = await drafts_across(provider, design_ref(set_design_id), lambda: sartiq.finish_task(task_id))
    assert [(d.type, d.severity) for d in drafts] == [
        ("sartiq.set_design.base_images_added", Severity.INFO),
        ("sartiq.set_design.subject_added", Severity.INFO),
    ]
    added, subject = drafts
    assert added.summary == "Set design “Beach house”: 2 base images added (3 in all)"
    assert (added.data["count"], added.data["total"]) == (2, 3)
    assert sorted(i["shot_type_id"] for i in added.data["images"]) == sorted(SHOTS[:2])
    assert {i["subject_id"] for i in added.data["images"]} == {"subject-1"}
    assert subject.data == {"subject_id": "subject-1", "shot_type_ids": sorted(SHOTS[:2]), "count": 2}


async def test_removed_base_image_is_an_event(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    set_design_id = sartiq.add_set_design("Loft", base_images=[("s", SHOTS[0]), ("s", SHOTS[1])])
    drafts = await drafts_across(
        provider, design_ref(set_design_id), lambda: sartiq.remove_base_image(set_design_id, "s", SHOTS[1])
    )
    assert [d.type for d in drafts] == ["sartiq.set_design.base_images_removed"]
    assert drafts[0].data["images"][0]["shot_type_id"] == SHOTS[1]
    assert drafts[0].data["total"] == 1


async def test_presigned_urls_are_not_a_change(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    set_design_id = sartiq.add_set_design("Loft", base_images=[("s", SHOTS[0])])
    first, second = (
        await provider.fetch(design_ref(set_design_id)),
        await provider.fetch(design_ref(set_design_id)),
    )
    assert first["base_images"][0]["image_url"] != second["base_images"][0]["image_url"]
    old, new = (
        provider.normalize(design_ref(set_design_id), first),
        provider.normalize(design_ref(set_design_id), second),
    )
    assert diff(old, new) == []
    (image,) = new["base_images"].values()
    assert "?" not in image["image_url"] and "?" not in image["image_media"]["url"]


async def test_re_uploading_the_same_shots_is_no_event(provider: SartiqProvider, sartiq: SartiqSim) -> None:
    set_design_id = sartiq.add_set_design("Loft", base_images=[("s", SHOTS[0])])
    drafts = await drafts_across(
        provider, design_ref(set_design_id), lambda: sartiq.add_base_image(set_design_id, "s", SHOTS[0])
    )
    assert drafts == []


# ---- the simulator ---------------------------------------------------------------------------------


async def test_simulator_progression_ends_every_task(provider: SartiqProvider, sim: Simulator) -> None:
    sartiq: SartiqSim = sim["sartiq"]
    task_ids = sartiq.add_many(6)
    old = {t: await poll(provider, task_ref(t)) for t in task_ids}
    for _ in range(80):
        sim.step()
    types: set[str] = set()
    for t in task_ids:
        new = await poll(provider, task_ref(t))
        assert provider.describe(task_ref(t), new).terminal
        types |= {d.type for d in provider.classify(task_ref(t), old[t], new, diff(old[t], new))}
    assert {"sartiq.upload_task.state_changed", "sartiq.upload_task.progress_changed"} <= types


async def test_control_routes_drive_a_task(
    sim: Simulator, session: aiohttp.ClientSession, provider: SartiqProvider
) -> None:
    control = f"{sim.base_url}/_sim/sartiq"
    async with session.post(f"{control}/set-designs", json={"name": "Studio"}) as resp:
        assert resp.status == 201
        set_design_id = (await resp.json())["id"]
    async with session.post(
        f"{control}/tasks", json={"set_design_id": set_design_id, "subject_id": "s1", "total_items": 4}
    ) as resp:
        assert resp.status == 201
        task_id = (await resp.json())["id"]
    async with session.post(
        f"{control}/tasks/{task_id}/advance", json={"processed": 2, "skipped": 1}
    ) as resp:
        assert (await resp.json())["progress"] == 50
    async with session.post(
        f"{control}/tasks/{task_id}/finish", json={"status": "failed", "error_message": "boom"}
    ) as resp:
        assert resp.status == 200
    snap = await poll(provider, latest_ref(set_design_id, "s1"))
    assert (snap["id"], snap["status"], snap["error_message"], snap["images_skipped"]) == (
        task_id,
        "FAILED",
        "boom",
        1,
    )
    requests_before = sim["sartiq"].token_requests
    async with session.post(f"{control}/tokens/expire") as resp:
        assert resp.status == 200
    await poll(provider, task_ref(task_id))
    assert sim["sartiq"].token_requests == requests_before + 1
    async with session.delete(f"{control}/tasks/{task_id}") as resp:
        assert resp.status == 200
    with pytest.raises(NotFound):
        await provider.fetch(task_ref(task_id))
