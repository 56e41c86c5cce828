"""What a console app holds, and the helpers every page uses: its state, the request's
session, rendering a page with the layout's context, and the answer to a POST (a redirect
carrying a flash message)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jinja2
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from pydantic import BaseModel, ValidationError

import providers as provider_registry
from providers.spec import ProviderSpec
from worker import api_models as models
from worker.api_http import ApiState
from worker.console.rates import RateWindow
from worker.console.render import environment, html
from worker.console.session import FLASH_COOKIE, Flash, Session, Signer

__all__ = [
    "BASE",
    "CONSOLE",
    "FORM",
    "SESSION",
    "ConsoleState",
    "console_of",
    "cookie_options",
    "form_of",
    "page",
    "query_model",
    "see_other",
    "session_of",
]

BASE = "/ui"
SESSION = web.RequestKey("statehook.console.session", Session)
FORM: web.RequestKey[MultiDictProxy[Any]] = web.RequestKey("statehook.console.form", MultiDictProxy)


@dataclass
class ConsoleState:
    api: ApiState
    signer: Signer | None
    """None: no API token is configured, the console is off"""
    env: jinja2.Environment = field(default_factory=environment)
    rates: RateWindow = field(default_factory=RateWindow)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    """set when the app shuts down: live tails end"""
    clock: Callable[[], float] = time.time
    specs: dict[str, ProviderSpec] = field(default_factory=dict)
    """the configured providers' pure specs (what a snapshot's state and volatile keys are)"""

    @classmethod
    def of(cls, api: ApiState) -> ConsoleState:
        token = api.token
        specs = {name: provider_registry.REGISTRY[name].spec_type(settings)
                 for name, settings in api.config.providers.items() if name in provider_registry.REGISTRY}
        return cls(api=api, signer=Signer(token) if token else None, specs=specs)


CONSOLE = web.AppKey("statehook.console", ConsoleState)


def console_of(request: web.Request) -> ConsoleState:
    state: ConsoleState = request.app[CONSOLE]
    return state


def session_of(request: web.Request) -> Session:
    return request[SESSION]


def form_of(request: web.Request) -> MultiDictProxy[Any]:
    """The POST's form fields as read (and checked) by the guard."""
    return request.get(FORM) or MultiDictProxy(MultiDict())


def cookie_options(request: web.Request, max_age: int | None) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, the console's path; Secure when served over TLS."""
    options: dict[str, Any] = {"path": BASE, "httponly": True, "samesite": "Strict", "secure": request.secure}
    if max_age is not None:
        options["max_age"] = max_age
    return options


def page(request: web.Request, template: str, *, status: int = 200, title: str = "", nav: str = "",
         **context: Any) -> web.Response:
    """A page with the layout: the navigation, the session's CSRF token for its forms, and
    the flash message of the POST that led here (then cleared)."""
    cs = console_of(request)
    session = request.get(SESSION)
    flash = cs.signer.flash(request.cookies.get(FLASH_COOKIE)) if cs.signer else None
    response = html(cs.env, template, {
        "base": BASE, "title": title, "nav": nav, "signed_in": session is not None,
        "csrf": cs.signer.csrf(session.sid) if cs.signer and session else "",
        "flash": flash, "now": cs.clock(), "query": dict(request.query), **context,
    }, status=status)
    if FLASH_COOKIE in request.cookies:
        response.del_cookie(FLASH_COOKIE, path=BASE)
    return response


def see_other(request: web.Request, location: str, flash: Flash | None = None) -> web.Response:
    """The answer to a POST: 303 to a page (of the console only), with what was done."""
    if not location.startswith(BASE + "/") or location.startswith("//") or "\\" in location:
        location = BASE + "/"
    response = web.Response(status=303, headers={"Location": location})
    cs = console_of(request)
    if flash is not None and cs.signer is not None:
        response.set_cookie(FLASH_COOKIE, cs.signer.flash_cookie(flash), **cookie_options(request, 60))
    return response


M = TypeVar("M", bound=BaseModel)


def query_model(request: web.Request, model: type[M], **extra: Any) -> M:
    """The query string validated by the API's own model (`extra` overrides); else 400 (the
    guard renders it) naming each bad parameter."""
    values = {**models.query_values(model, request.query, request.query.getall), **extra}
    values = {k: v for k, v in values.items() if v not in ("", None)}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise web.HTTPBadRequest(reason=f"invalid query: {models.one_line(models.problems(exc))}") from None
