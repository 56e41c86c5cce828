"""Destinations: each one's kind, settings (every secret masked as `statehook check` masks
them), whether it is disabled and why, its deliveries by outcome and dead letters; enable,
disable and "send a test event" through `statehook notify`'s own functions."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from config.load import canonical_name
from config.show import resolved
from store.reads import Reads
from store.stats import DELIVERY_OUTCOMES, parse_stats
from worker.api_http import DEADLINE
from worker.console.session import Flash
from worker.console.state import BASE, console_of, form_of, page, see_other
from worker.delivery_ops import TestOutcome, destination_status, disable_destination, enable_destination, send_test

__all__ = ["TEST_WAIT", "destination_action", "destinations"]

log = logging.getLogger("statehook.console")

TEST_WAIT = 8.0
"""seconds the page waits for a worker to make a test event's attempt"""
ACTIONS = ("enable", "disable", "test")


def _shown_settings(masked: dict[str, Any]) -> list[tuple[str, str]]:
    """The masked settings worth a line: set, and not the kind (shown apart)."""
    out = []
    for key, value in masked.items():
        if key in ("kind", "enabled") or value in (None, "", [], {}):
            continue
        out.append((key, ", ".join(map(str, value)) if isinstance(value, list) else str(value)))
    return out


async def destinations(request: web.Request) -> web.Response:
    cs = console_of(request)
    st = cs.api
    rows = await destination_status(st.redis, st.config)
    stats = parse_stats(await Reads(st.redis).stats())
    masked = resolved(st.config)["destinations"]
    for row in rows:
        row["settings"] = _shown_settings(masked.get(row["name"], {}))
        row["outcomes"] = {o: stats.deliveries_by_destination.get((row["name"], o), 0) for o in DELIVERY_OUTCOMES}
    return page(request, "destinations.html.j2", title="Destinations", nav="destinations", rows=rows)


def _tested(name: str, outcome: TestOutcome) -> Flash:
    attempt = outcome.attempt or {}
    detail = f" (status {attempt.get('status') or '-'}, {attempt.get('duration_ms')} ms)" if attempt else ""
    if outcome.delivered:
        return Flash("ok", f"Test event {outcome.event_id} delivered to {name}{detail}.")
    if outcome.disabled is not None:
        return Flash("error", f"{name} is disabled ({outcome.disabled}): test event {outcome.event_id} is "
                              "dead-lettered, as every delivery to it until it is enabled.")
    if outcome.queued and not attempt and outcome.held is not None:
        return Flash("error", f"Test event {outcome.event_id} waits behind {name}'s open circuit ({outcome.held}): "
                              "it is sent when the destination answers again.")
    if outcome.queued and not attempt:
        return Flash("error", f"Test event {outcome.event_id} queued, but no worker took it within {TEST_WAIT:g} s: "
                              "is `statehook run` running?")
    return Flash("error", f"Test event {outcome.event_id} to {name} failed: {attempt.get('error')}{detail}.")


async def destination_action(request: web.Request) -> web.Response:
    cs = console_of(request)
    st = cs.api
    form = form_of(request)
    raw_name, action = form.get("name"), form.get("action")
    back = BASE + "/destinations"
    if not isinstance(raw_name, str) or action not in ACTIONS:
        return see_other(request, back, Flash("error", "Choose a destination and an action."))
    name = canonical_name(raw_name)
    disabled = (await destination_status(st.redis, st.config)) if name not in st.config.destinations else []
    if name not in st.config.destinations and not (action == "enable" and any(r["name"] == name for r in disabled)):
        return see_other(request, back, Flash("error", f"No destination named {raw_name!r}."))
    if action == "enable":
        was = await enable_destination(st.redis, st.config, name)
        flash = Flash("ok", f"{name} enabled." if was else f"{name} was not disabled.")
    elif action == "disable":
        await disable_destination(st.redis, st.config, name, "disabled from the console")
        flash = Flash("ok", f"{name} disabled: its deliveries are dead-lettered until it is enabled.")
    else:
        deadline = request.get(DEADLINE)
        if deadline is not None:
            deadline.reschedule(asyncio.get_running_loop().time() + TEST_WAIT + 3)
        flash = _tested(name, await send_test(st.redis, st.config, name, via_worker=True, timeout=TEST_WAIT))
    log.info("console: destination %s: %s", name, action)
    return see_other(request, back, flash)
