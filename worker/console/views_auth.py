"""Signing in and out: the console asks for the API token once and keeps a session cookie."""

from __future__ import annotations

import logging

from aiohttp import web

from worker.console.session import LOGIN_COOKIE, SESSION_COOKIE, SESSION_SECONDS, Flash
from worker.console.state import BASE, console_of, cookie_options, form_of, page, see_other

__all__ = ["login_form", "sign_in", "sign_out"]

log = logging.getLogger("statehook.console")


def _next_of(value: object) -> str:
    """Where to go after signing in: a console page, never another site."""
    text = value if isinstance(value, str) else ""
    if text.startswith(BASE + "/") and not text.startswith(BASE + "/login") and "\\" not in text:
        return text
    return BASE + "/"


def _form(request: web.Request, *, status: int = 200, problem: str | None = None) -> web.Response:
    cs = console_of(request)
    assert cs.signer is not None  # the guard answers for a console that is off
    nonce = request.cookies.get(LOGIN_COOKIE) or cs.signer.login_nonce()
    nxt = _next_of(request.query.get("next") or form_of(request).get("next"))
    response = page(request, "login.html.j2", status=status, title="Sign in", login_csrf=cs.signer.login_csrf(nonce),
                    next=nxt, problem=problem)
    response.set_cookie(LOGIN_COOKIE, nonce, **cookie_options(request, 3600))
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    cs = console_of(request)
    assert cs.signer is not None
    if cs.signer.session(request.cookies.get(SESSION_COOKIE), cs.clock()) is not None:
        return web.Response(status=303, headers={"Location": _next_of(request.query.get("next"))})
    return _form(request)


async def sign_in(request: web.Request) -> web.StreamResponse:
    cs = console_of(request)
    assert cs.signer is not None and cs.api.token is not None
    given = form_of(request).get("token")
    if not isinstance(given, str) or not cs.signer.token_ok(given, cs.api.token):
        log.warning("console: a sign-in with a wrong token was refused (from %s)", request.remote)
        return _form(request, status=401, problem="That is not the API token.")
    _, cookie = cs.signer.new_session(cs.clock())
    response = see_other(request, _next_of(form_of(request).get("next")), Flash("ok", "Signed in."))
    response.set_cookie(SESSION_COOKIE, cookie, **cookie_options(request, SESSION_SECONDS))
    response.del_cookie(LOGIN_COOKIE, path=BASE)
    log.info("console: signed in (from %s)", request.remote)
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    response = see_other(request, BASE + "/login", Flash("ok", "Signed out."))
    response.del_cookie(SESSION_COOKIE, path=BASE)
    return response
