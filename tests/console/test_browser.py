"""The console end to end in headless Chromium against a real `statehook api` and worker
(tests/console/conftest.py): sign in; a resource's timeline after the simulator moves it;
the live tail; a dead letter replayed and delivered; a destination disabled and enabled;
refused without a session; a POST without the CSRF token refused; a silence created from its
preview. Every page passes axe-core
with no serious or critical violation and is saved as a screenshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from model.resources import ResourceRef
from store import keys
from store.silences import SilenceStore
from store.snapshots import Store, WatchMeta
from tests.conftest import wait_for
from tests.console.conftest import AXE, Stack
from tests.console.kit import TOKEN

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERIOUS = ("serious", "critical")


@pytest_asyncio.fixture(loop_scope="module")
async def page(stack: Stack, browser: Any) -> AsyncIterator[Any]:
    """A fresh browser context (no cookies) and page; the page's console errors fail the test."""
    context = await browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 860})
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield tab
    finally:
        await context.close()
    assert not [e for e in errors if "401" not in e and "403" not in e], errors


async def checked(page: Any, stack: Stack, name: str) -> None:
    """axe-core finds no serious or critical violation; then a screenshot of the whole page."""
    await page.evaluate(AXE.read_text())
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
           if v["impact"] in SERIOUS]
    assert not bad, f"{name}: {bad}"
    await page.screenshot(path=str(stack.shots / f"{name}.png"), full_page=True)


async def sign_in(page: Any, next_path: str = "/ui/") -> None:
    await page.goto(next_path)
    await page.get_by_label("API token").fill(TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{next_path}")


async def watched(stack: Stack, rkey: str) -> str:
    """`rkey` watched every 0.5 s, once its first poll (the baseline) is made."""
    await Store(stack.redis).add_watches([(rkey, WatchMeta(interval=0.5))])
    await wait_for(lambda: stack.redis.hexists(keys.STATE, rkey), timeout=15, what="baseline poll")
    return rkey


async def flash(page: Any) -> str:
    """What the last POST did, as the page it led to says."""
    text: str = await page.locator("p.flash").inner_text(timeout=20_000)
    return text


async def reload_until(page: Any, text: str, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in await page.content():
        if time.monotonic() > deadline:
            raise AssertionError(f"{page.url} did not show {text!r} within {timeout}s")
        await asyncio.sleep(0.3)
        await page.reload()


async def test_without_a_session_the_console_asks_to_sign_in_and_refuses_actions(page: Any, stack: Stack) -> None:
    await page.goto("/ui/dead-letters")
    assert "/ui/login" in page.url
    await checked(page, stack, "sign-in")
    refused = await page.request.post("/ui/destinations", form={"name": "hook", "action": "disable"})
    assert refused.status == 403
    await page.get_by_label("API token").fill("wrong")
    await page.get_by_role("button", name="Sign in").click()
    assert "not the API token" in await page.content()
    assert not await stack.redis.hexists(keys.DISABLED, "hook")


async def test_sign_in_shows_the_overview(page: Any, stack: Stack) -> None:
    await sign_in(page)
    await page.get_by_role("heading", name="Overview").wait_for()
    assert "Live workers" in await page.content()
    await page.wait_for_function("document.querySelector('#live') && "
                                 "!document.body.textContent.includes('No worker has a heartbeat')")
    await checked(page, stack, "overview")


async def test_a_resources_timeline_after_the_simulator_moves_it(page: Any, stack: Stack) -> None:
    oid = stack.sim["artistree"].add_order(state="In Progress", title="Poster v3")["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    await sign_in(page, "/ui/watches")
    await page.locator("#a-provider").select_option("artistree")
    await page.get_by_label("Ids").fill(oid)
    await page.get_by_label("Interval").fill("0.5s")
    await page.get_by_role("button", name="Add").click()
    assert await flash(page) == "1 watch(es) of artistree registered, 1 new."
    await wait_for(lambda: stack.redis.hexists(keys.STATE, rkey), timeout=15, what="baseline poll")
    await page.get_by_label("Resource key contains").fill(oid)
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name=oid).wait_for()
    await checked(page, stack, "watches")
    stack.sim["artistree"].set_state(oid, "Failed")
    await page.get_by_role("link", name=oid).click()
    await reload_until(page, "In Progress → Failed")
    await reload_until(page, "delivered")
    assert "artistree.order.state_changed" in await page.content()
    await page.get_by_role("button", name="Poll now").click()
    assert (await flash(page)).startswith("Poll scheduled")
    await checked(page, stack, "resource")


async def test_the_events_page_tails_new_events_live(page: Any, stack: Stack) -> None:
    number = stack.sim["rev"].add_order(status="Transcribing")
    rkey = await watched(stack, ResourceRef("rev", "order", number).key)
    await sign_in(page, "/ui/events?provider=rev")
    await page.get_by_text("Live: new events appear").wait_for()
    stack.sim["rev"].set_status(number, "Complete")
    await page.locator("#event-rows tr", has_text=rkey).first.wait_for(timeout=15_000)
    await checked(page, stack, "events")


async def test_a_dead_letter_is_replayed_and_delivered(page: Any, stack: Stack) -> None:
    oid = stack.sim["artistree"].add_order(state="In Progress", title="Banner")["order_id"]
    rkey = await watched(stack, ResourceRef("artistree", "order", oid).key)
    stack.receiver.script = [422]  # refused for good: dead-lettered at once
    stack.sim["artistree"].set_state(oid, "Action Required")
    await wait_for(lambda: stack.redis.xlen(keys.DLQ), timeout=15, what="a dead letter")
    await sign_in(page, "/ui/dead-letters")
    await page.get_by_text("HTTP 422").first.wait_for()
    await checked(page, stack, "dead-letters")
    delivered = len(stack.receiver.delivered)
    await page.get_by_role("checkbox", name="Select the dead letter").first.check()
    await page.get_by_role("button", name="Replay selected").click()
    assert await flash(page) == "1 dead letter(s) replayed: 1 delivery job(s) queued."
    await wait_for(lambda: len(stack.receiver.delivered) > delivered, timeout=15, what="the replay's delivery")
    assert stack.receiver.delivered[-1].event["data"]["to"] == "Action Required"
    await page.goto(f"/ui/resource?rkey={rkey}")
    # newest first: the replay's note, then the event with its attempts
    await page.locator("ol.timeline > li").first.get_by_text("replayed", exact=True).wait_for()
    attempts = page.locator("ol.timeline > li", has=page.locator("table.attempts")).first.locator(
        "table.attempts tbody tr")
    deadline = time.monotonic() + 10
    while await attempts.count() < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        await page.reload()
    rows = [await attempts.nth(i).inner_text() for i in range(await attempts.count())]
    assert any("failed" in r and "422" in r for r in rows) and any("delivered" in r for r in rows), rows


async def test_a_destination_is_disabled_and_enabled(page: Any, stack: Stack) -> None:
    await sign_in(page, "/ui/destinations")
    await page.get_by_role("button", name="Disable hook").click()
    assert (await flash(page)).startswith("hook disabled")
    assert await stack.redis.hexists(keys.DISABLED, "hook")
    await checked(page, stack, "destinations")
    await page.get_by_role("button", name="Enable hook").click()
    assert await flash(page) == "hook enabled."
    assert not await stack.redis.hexists(keys.DISABLED, "hook")
    await page.get_by_role("button", name="Send a test event to hook").click()
    assert "delivered to hook" in await flash(page)


async def test_a_post_without_the_csrf_token_is_refused(page: Any, stack: Stack) -> None:
    await sign_in(page, "/ui/destinations")
    without = await page.request.post("/ui/destinations", form={"name": "hook", "action": "disable"})
    assert without.status == 403 and "CSRF" in await without.text()
    status = await page.evaluate("""async () => {
        const body = new URLSearchParams({name: 'hook', action: 'disable'});
        return (await fetch('/ui/destinations', {method: 'POST', body})).status;
    }""")
    assert status == 403
    assert not await stack.redis.hexists(keys.DISABLED, "hook")


async def test_a_silence_is_created_from_its_preview(page: Any, stack: Stack) -> None:
    await sign_in(page, "/ui/silences/new")
    await page.get_by_label("Matchers").fill("provider=artistree\nseverity=critical")
    await page.get_by_label("Ends").fill("1h")
    await page.get_by_label("Comment").fill("poster reprint")
    await page.get_by_role("button", name="Preview").click()
    await page.get_by_role("heading", name="What it would have muted in the last 24 hours").wait_for()
    assert await page.locator("table.rows tbody tr").count() >= 1  # the Failed and Action Required events
    assert not await SilenceStore(stack.redis).all()
    await checked(page, stack, "silence-preview")
    await page.get_by_role("button", name="Create the silence").click()
    assert (await flash(page)).startswith("Silence sil_")
    (silence,) = await SilenceStore(stack.redis).all()
    assert silence.match.given() == {"provider": ["artistree"], "severity": ["critical"]}
    await checked(page, stack, "silences")
    await page.get_by_role("button", name=f"Expire {silence.id} now").click()
    assert await flash(page) == f"Silence {silence.id} expired."
