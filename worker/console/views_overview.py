"""The overview: each provider's health, the due backlog, polls and events per minute,
deliveries by outcome, dead letters, disabled destinations and live workers. The page
refreshes itself (console.js fetches it again and swaps its main part; without
JavaScript, the "refresh" link)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from store.deliveries import Deliveries
from store.reads import Reads
from store.stats import DELIVERY_OUTCOMES, Stats, parse_stats
from worker.console.rates import Rates
from worker.console.state import console_of, page
from worker.metrics import read_gauges

__all__ = ["overview"]

ERROR_OUTCOMES = ("unavailable", "malformed", "error", "unauthorized", "not_found", "corrupt")


@dataclass(frozen=True, slots=True)
class ProviderRow:
    name: str
    status: str
    """healthy | unhealthy | rate-limited"""
    detail: str
    polls_per_minute: float | None
    events_per_minute: float | None
    polls: int
    errors: int


def _totals(stats: Stats) -> dict[str, int]:
    """The counters whose rates the overview shows."""
    totals: Counter[str] = Counter()
    for (provider, _), n in stats.polls.items():
        totals["polls"] += n
        totals[f"polls:{provider}"] += n
    for provider, n in stats.events_by_provider.items():
        totals["events"] += n
        totals[f"events:{provider}"] += n
    totals["events"] += 0
    totals["polls"] += 0
    return dict(totals)


def _provider_rows(health: list[Any], stats: Stats, rates: Rates | None) -> list[ProviderRow]:
    rows = []
    for h in health:
        if h.unhealthy:
            status, detail = "unhealthy", h.unhealthy
        elif h.paused_for > 0:
            status, detail = "rate-limited", f"paused for {h.paused_for:.0f} s more (a 429's Retry-After)"
        else:
            status, detail = "healthy", ""
        polls = sum(n for (p, _), n in stats.polls.items() if p == h.provider)
        errors = sum(n for (p, o), n in stats.polls.items() if p == h.provider and o in ERROR_OUTCOMES)
        rows.append(ProviderRow(
            h.provider, status, detail,
            rates.get(f"polls:{h.provider}") if rates else None,
            rates.get(f"events:{h.provider}") if rates else None, polls, errors))
    return rows


def _destination_rows(stats: Stats, disabled: dict[str, str], configured: list[str]) -> list[dict[str, Any]]:
    names = sorted(set(configured) | set(disabled) | {d for d, _ in stats.deliveries_by_destination})
    return [{"name": name, "disabled": disabled.get(name),
             **{o: stats.deliveries_by_destination.get((name, o), 0) for o in DELIVERY_OUTCOMES}}
            for name in names]


async def overview(request: web.Request) -> web.Response:
    cs = console_of(request)
    st = cs.api
    now = cs.clock()
    reads = Reads(st.redis)
    stats = parse_stats(await reads.stats())
    rates = cs.rates.observe(now, _totals(stats))
    health = await reads.provider_health(sorted(st.config.providers))
    gauges = await read_gauges(st.redis, now)
    disabled = await Deliveries(st.redis).disabled()
    beats = await st.registry.beats(now)
    workers = [{"name": b.worker, "age": b.age(now), "interval": b.interval, "fresh": b.fresh(now)} for b in beats]
    return page(
        request, "overview.html.j2", title="Overview", nav="overview",
        providers=_provider_rows(health, stats, rates), gauges=gauges, rates=rates,
        deliveries={o: stats.deliveries.get(o, 0) for o in DELIVERY_OUTCOMES},
        destinations=_destination_rows(stats, disabled, list(st.config.destinations)),
        workers=workers, events_total=stats.events, corrupt=stats.corrupt_records,
    )
