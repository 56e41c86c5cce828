"""The console's aiohttp sub-application: its routes, its middleware (worker/console/guard.py)
and its static files, mounted at /ui of the API's app."""

from __future__ import annotations

from aiohttp import web

from worker.api_http import STATE
from worker.console import (
    views_auth,
    views_destinations,
    views_dlq,
    views_events,
    views_overview,
    views_resource,
    views_silences,
    views_watches,
)
from worker.console.guard import guard
from worker.console.state import BASE, CONSOLE, ConsoleState

__all__ = ["STATIC", "console_app", "mount_console"]

from pathlib import Path

STATIC = Path(__file__).parent / "static"


def console_app(state: ConsoleState) -> web.Application:
    console = web.Application(middlewares=[guard])
    console[STATE] = state.api
    console[CONSOLE] = state
    r = console.router
    r.add_get("/", views_overview.overview)
    r.add_get("/login", views_auth.login_form)
    r.add_post("/login", views_auth.sign_in)
    r.add_post("/logout", views_auth.sign_out)
    r.add_get("/watches", views_watches.watches)
    r.add_post("/watches", views_watches.add_watch)
    r.add_post("/watches/remove", views_watches.remove_watch)
    r.add_get("/resource", views_resource.resource)
    r.add_post("/resource/poll", views_resource.poll_now)
    r.add_get("/events", views_events.events)
    r.add_get("/events/stream", views_events.events_stream)
    r.add_get("/dead-letters", views_dlq.dead_letters)
    r.add_post("/dead-letters/replay", views_dlq.replay)
    r.add_post("/dead-letters/purge", views_dlq.purge)
    r.add_get("/destinations", views_destinations.destinations)
    r.add_post("/destinations", views_destinations.destination_action)
    r.add_get("/silences", views_silences.silences)
    r.add_get("/silences/new", views_silences.new_silence)
    r.add_post("/silences", views_silences.create)
    r.add_post("/silences/extend", views_silences.extend)
    r.add_post("/silences/expire", views_silences.expire)
    r.add_static("/static", STATIC, append_version=False)

    async def _closing(_: web.Application) -> None:
        state.closing.set()  # live tails end, so that the API stops without waiting on them

    console.on_shutdown.append(_closing)
    return console


async def _to_console(request: web.Request) -> web.Response:
    return web.Response(status=308, headers={"Location": BASE + "/"})


def mount_console(app: web.Application) -> ConsoleState:
    """Serve the console at /ui of the API's `app` (made by worker.api.make_app)."""
    state = ConsoleState.of(app[STATE])
    app[CONSOLE] = state
    app.router.add_get(BASE, _to_console)
    app.add_subapp(BASE, console_app(state))
    return state
