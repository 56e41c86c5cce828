"""The console's middleware: what every request to /ui passes through.

- No API token configured: every page says the console is off (403).
- Without a valid session: a page redirects to the sign-in page, anything else is refused
  (403, or 401 for the live tail).
- Every POST must come from this origin (Origin and Sec-Fetch-Site, when the browser
  sends them) and carry the session's CSRF token (form field `csrf`, or the X-CSRF-Token
  header); the sign-in form carries its own (state.py, session.py). Else 403.
- Every answer gets the security headers (a strict Content-Security-Policy: the console's
  own scripts and styles only, no frames) and a Server-Timing header with the time spent.
- Errors are HTML pages: Redis unavailable is 503 with Retry-After, anything unexpected
  500 (the traceback goes to the log, never into the page).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from worker.api_http import FORM_ERRORS, RETRY_AFTER, receiving_body, start_deadline
from worker.console.session import LOGIN_COOKIE, SESSION_COOKIE
from worker.console.state import BASE, FORM, SESSION, console_of, page
from worker.persistence import redis_down, redis_problem

__all__ = ["SECURITY_HEADERS", "guard"]

log = logging.getLogger("statehook.console")

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make a form's Origin "null"
}
PUBLIC = (BASE + "/login", BASE + "/static/")
LIVE = BASE + "/events/stream"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refusal(request: web.Request, status: int, reason: str, *, headers: dict[str, str] | None = None) -> web.Response:
    response = page(request, "error.html.j2", status=status, title=f"{status}", reason=reason)
    response.headers.update(headers or {})
    return response


def _same_origin(request: web.Request) -> str | None:
    """Why a POST is not from the console's own pages, or None."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return "cross-origin request refused"
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return "cross-site request refused"
    return None


async def _read_form(request: web.Request) -> None:
    """The POST's form, within BODY_TIMEOUT; then the request's Redis deadline starts."""
    try:
        async with receiving_body(request):
            request[FORM] = await request.post()
    except FORM_ERRORS:
        raise web.HTTPBadRequest(reason="the body is not a form") from None
    start_deadline(request)


async def _checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    cs = console_of(request)
    path = request.path
    if path.startswith(BASE + "/static/"):
        return await handler(request)
    if cs.signer is None:
        return refusal(request, 403, "The console is off: no API token is configured. Set STATEHOOK_API__TOKEN "
                                     "(or [api] token) and restart `statehook api`.")
    if request.method == "POST":
        why = _same_origin(request)
        if why is not None:
            return refusal(request, 403, why)
        await _read_form(request)
    if path in PUBLIC:
        if request.method == "POST" and not cs.signer.login_csrf_ok(request.cookies.get(LOGIN_COOKIE),
                                                                    _csrf_given(request)):
            return refusal(request, 403, "the sign-in form has expired or is not this console's: open it again")
        return await handler(request)
    session = cs.signer.session(request.cookies.get(SESSION_COOKIE), cs.clock())
    if session is None:
        if request.method == "GET" and path != LIVE:
            return web.Response(status=303, headers={"Location": f"{BASE}/login?{_next(request)}"})
        return refusal(request, 401 if path == LIVE else 403, "no session: sign in first")
    if request.method == "POST" and not cs.signer.csrf_ok(session.sid, _csrf_given(request)):
        return refusal(request, 403, "missing or invalid CSRF token: reload the page and try again")
    request[SESSION] = session
    return await handler(request)


def _csrf_given(request: web.Request) -> str | None:
    form = request.get(FORM)
    given = form.get("csrf") if form is not None else None
    return str(given) if isinstance(given, str) else request.headers.get("X-CSRF-Token")


def _next(request: web.Request) -> str:
    from urllib.parse import urlencode

    return urlencode({"next": request.path_qs})


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await _checked(request, handler)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = refusal(request, exc.status, exc.reason)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if not redis_down(exc):
            log.exception("console: %s %s failed", request.method, request.path)
            response = refusal(request, 500, "internal error (see the API's log)")
        else:
            console_of(request).api.redis_status.failed(exc)
            response = refusal(request, 503, f"Redis is unavailable ({redis_problem(exc)}): try again shortly",
                               headers={"Retry-After": RETRY_AFTER})
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response
