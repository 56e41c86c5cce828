"""The console's sign-in, sessions and CSRF, over HTTP against the API on a free port (no
browser): refused without a session, the cookie's attributes, a POST without (or with a
wrong) CSRF token or from another origin refused, sessions that expire or are tampered
with, and a console that is off without a token."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import make_mocked_request

from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from store import keys
from tests.console.kit import TOKEN, serving_console
from tests.test_api import BAD_FORMS, api_config, raw_request
from worker.console.session import SESSION_COOKIE, SESSION_SECONDS, Signer
from worker.console.state import cookie_options


@pytest.fixture
def config(tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver):  # type: ignore[no-untyped-def]
    return api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)


async def test_without_a_token_the_console_is_off_and_says_so(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = api_config(tmp_path, redis_url, sim, receiver, token=None)
    async with serving_console(config) as (_, client, _state):
        for path in ("/ui/", "/ui/login", "/ui/watches"):
            page = await client.get(path)
            assert page.status == 403, path
            assert "The console is off" in page.text and "STATEHOOK_API__TOKEN" in page.text
        refused = await client.post("/ui/login", {"token": "anything"}, csrf_from=None)
        assert refused.status == 403
        assert (await client.get("/ui", follow=False)).headers["Location"] == "/ui/"


async def test_without_a_session_pages_ask_to_sign_in_and_actions_are_refused(
    config, redis: aioredis.Redis  # type: ignore[no-untyped-def]
) -> None:
    async with serving_console(config) as (_, client, _state):
        for path in ("/ui/", "/ui/watches?q=x", "/ui/dead-letters", "/ui/destinations", "/ui/events"):
            page = await client.get(path, follow=False)
            assert page.status == 303, path
            assert page.headers["Location"].startswith("/ui/login?next=")
        login = await client.get("/ui/watches?q=x")
        assert '<input type="hidden" name="next" value="/ui/watches?q=x">' in login.text
        assert 'type="password"' in login.text
        refused = await client.post("/ui/destinations", {"name": "hook", "action": "disable"}, csrf_from=None)
        assert refused.status == 403 and "sign in" in refused.text
        assert not await redis.hexists(keys.DISABLED, "hook")
        assert (await client.get("/ui/events/stream")).status == 401


async def test_signing_in_keeps_a_strict_http_only_expiring_session(config) -> None:  # type: ignore[no-untyped-def]
    async with serving_console(config) as (_, client, _state):
        wrong = await client.sign_in("not-the-token")
        assert wrong.status == 401 and "not the API token" in wrong.text
        assert client.cookie(SESSION_COOKIE) is None
        answer = await client.sign_in()
        assert answer.status == 303 and answer.headers["Location"] == "/ui/"
        (cookie,) = [c for c in answer.headers.getall("Set-Cookie") if c.startswith(SESSION_COOKIE + "=")]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite", "max-age", "path"} <= attributes
        assert "SameSite=Strict" in cookie and f"Max-Age={SESSION_SECONDS}" in cookie and "Path=/ui" in cookie
        assert "secure" not in attributes  # plain HTTP here; over TLS it is Secure (below)
        overview = await client.get("/ui/")
        assert overview.status == 200 and "<h1>Overview</h1>" in overview.text
        assert TOKEN not in overview.text and TOKEN not in cookie


def test_the_session_cookie_is_secure_over_tls() -> None:
    request = make_mocked_request("GET", "/ui/")
    assert cookie_options(request.clone(scheme="https"), 60)["secure"] is True
    assert cookie_options(request, 60)["secure"] is False


async def test_a_post_without_the_csrf_token_is_refused(config, redis: aioredis.Redis) -> None:  # type: ignore[no-untyped-def]
    async with serving_console(config) as (url, client, _state):
        await client.sign_in()
        form = {"name": "hook", "action": "disable"}
        missing = await client.post("/ui/destinations", form, csrf_from=None)
        assert missing.status == 403 and "CSRF" in missing.text
        wrong = await client.post("/ui/destinations", {**form, "csrf": "x" * 43}, csrf_from=None)
        assert wrong.status == 403
        other_origin = await client.post("/ui/destinations", form, headers={"Origin": "http://evil.example"})
        assert other_origin.status == 403 and "cross-origin" in other_origin.text
        cross_site = await client.post("/ui/destinations", form, headers={"Sec-Fetch-Site": "cross-site"})
        assert cross_site.status == 403
        assert not await redis.hexists(keys.DISABLED, "hook")
        done = await client.post("/ui/destinations", form, headers={"Origin": url})
        assert done.status == 303
        assert await redis.hexists(keys.DISABLED, "hook")


async def test_cookies_and_csrf_tokens_that_are_not_ascii_are_invalid_not_errors(config) -> None:  # type: ignore[no-untyped-def]
    async with serving_console(config) as (url, client, _state):
        for cookie in (b"statehook_session=a.1.\xc3\xa9", b"statehook_session=a\xff.1.b"):
            status, _ = await raw_request(url, "GET", "/ui/", [("Cookie", cookie)])
            assert status == 303, cookie  # no session: to the sign-in page
        for cookie in (b"statehook_flash=a.\xc3\xa9", b"statehook_flash=a\xff.b", b"statehook_login=a\xff"):
            status, _ = await raw_request(url, "GET", "/ui/login", [("Cookie", cookie)])
            assert status == 200, cookie
        form = [("Content-Type", b"application/x-www-form-urlencoded")]
        for cookie in (b"statehook_login=abc", b"statehook_login=a\xffc"):
            status, page = await raw_request(url, "POST", "/ui/login", [*form, ("Cookie", cookie)],
                                             f"csrf=%C3%A9&token={TOKEN}".encode())
            assert status == 403 and b"sign-in form has expired" in page, cookie
        await client.sign_in()
        session = b"statehook_session=" + str(client.cookie(SESSION_COOKIE)).encode()
        for headers, body in (([*form], b"csrf=%C3%A9&name=hook&action=disable"),
                              ([("X-CSRF-Token", b"\xc3\xa9")], b""), ([("X-CSRF-Token", b"\xff")], b"")):
            status, page = await raw_request(url, "POST", "/ui/destinations", [*headers, ("Cookie", session)], body)
            assert status == 403 and b"invalid CSRF token" in page, headers


async def test_a_body_that_is_no_readable_form_is_a_bad_request(config) -> None:  # type: ignore[no-untyped-def]
    async with serving_console(config) as (_, client, _state):
        for signed_in in (False, True):
            if signed_in:
                await client.sign_in()
            for path in ("/ui/login", "/ui/destinations"):
                for ctype, body in BAD_FORMS:
                    answer = await client.post(path, body, csrf_from=None, headers={"Content-Type": ctype})
                    assert answer.status == 400 and "the body is not a form" in answer.text, (path, ctype)


async def test_sessions_end_when_they_expire_are_tampered_with_or_signed_out(config) -> None:  # type: ignore[no-untyped-def]
    async with serving_console(config) as (_, client, state):
        await client.sign_in()
        assert (await client.get("/ui/", follow=False)).status == 200
        real = client.cookie(SESSION_COOKIE)
        assert real is not None
        sid, expires, mac = real.split(".")
        for forged in (f"{sid}.{int(expires) + 3600}.{mac}", f"{sid}x.{expires}.{mac}", "garbage", ""):
            client.set_cookie(SESSION_COOKIE, forged)
            assert (await client.get("/ui/", follow=False)).status == 303, forged
        client.set_cookie(SESSION_COOKIE, real)
        assert (await client.get("/ui/", follow=False)).status == 200
        started = state.clock()
        state.clock = lambda: started + SESSION_SECONDS + 1
        assert (await client.get("/ui/", follow=False)).status == 303
        state.clock = lambda: started
        client.http.cookie_jar.clear()
        await client.sign_in()
        out = await client.post("/ui/logout", {})
        assert out.status == 303 and out.headers["Location"] == "/ui/login"
        assert (await client.get("/ui/", follow=False)).status == 303


async def test_after_signing_in_the_console_goes_only_to_its_own_pages(config) -> None:  # type: ignore[no-untyped-def]
    async with serving_console(config) as (_, client, _state):
        answer = await client.post("/ui/login", {"token": TOKEN, "next": "https://evil.example/"},
                                   csrf_from="/ui/login")
        assert answer.headers["Location"] == "/ui/"
        again = await client.post("/ui/logout", {})
        assert again.status == 303
        answer = await client.post("/ui/login", {"token": TOKEN, "next": "/ui/watches?q=a"}, csrf_from="/ui/login")
        assert answer.headers["Location"] == "/ui/watches?q=a"
        stale = await client.post("/ui/login", {"token": TOKEN, "csrf": "forged"}, csrf_from=None)
        assert stale.status == 403


def test_a_new_api_token_ends_every_session() -> None:
    old, new = Signer(b"token-one"), Signer(b"token-two")
    _, cookie = old.new_session(1000.0)
    assert old.session(cookie, 1001.0) is not None
    assert new.session(cookie, 1001.0) is None
    assert old.session(cookie, 1000.0 + SESSION_SECONDS) is None
    session = old.session(cookie, 1001.0)
    assert session is not None and old.csrf_ok(session.sid, old.csrf(session.sid))
    assert not new.csrf_ok(session.sid, old.csrf(session.sid))
    assert not old.csrf_ok(session.sid, "é") and not old.login_csrf_ok("nonce", "é")
    assert old.login_csrf_ok("n\udcff", old.login_csrf("n\udcff"))  # a cookie's bytes that are not UTF-8
    assert old.flash("a.é") is None and old.session("a.1.é", 1.0) is None
