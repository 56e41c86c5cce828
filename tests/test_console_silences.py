"""The console's silences page over HTTP (no browser), against the API on a free port and real
Redis: a new silence is previewed (what it would have muted among the last 24 h of events)
before it is created; one that would mute everything needs confirming; extend and expire;
refusals are one line on the page."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import redis.asyncio as aioredis

from core.silences import LATEST
from model.events import Severity
from model.silences import RoutingFacts, Silence, SilenceMatch
from simulator.core import Simulator
from simulator.receivers import WebhookReceiver
from store.recent import RecentEvents
from store.silences import SilenceStore
from tests.console.kit import TOKEN, serving_console
from tests.test_api import api_config


def _facts(i: int, provider: str, severity: Severity = Severity.INFO) -> RoutingFacts:
    return RoutingFacts(f"evt_{i}", f"{provider}.order.state_changed", provider, f"{provider}:order:o{i}", f"o{i}",
                        "Failed", severity, (), None, "2026-11-23T10:15:02Z", ("hook",))


def _flash(text: str) -> str:
    found = re.search(r'<p role="status" class="flash[^"]*">([^<]*)</p>', text)
    return html.unescape(found.group(1)) if found else ""


async def test_a_silence_is_previewed_created_extended_and_expired(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    await RecentEvents(redis).append([_facts(1, "rev"), _facts(2, "rev"), _facts(3, "artistree", Severity.CRITICAL)])
    async with serving_console(api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)) as (_, client, _s):
        await client.sign_in()
        preview = await client.get("/ui/silences/new?matchers=provider%3Drev&ends=2h&comment=upgrade&preview=1")
        assert preview.status == 200
        assert "2 delivery(ies) of 3 event(s) looked at" in preview.text
        assert "rev:order:o1" in preview.text and "artistree:order:o3" not in preview.text
        assert await SilenceStore(redis).all() == []  # a preview stores nothing

        created = await client.post("/ui/silences", {"matchers": "provider=rev", "starts": "now", "ends": "2h",
                                                     "author": "ops", "comment": "upgrade"}, follow=True)
        assert _flash(created.text).startswith("Silence sil_") and "muted 2 deliveries" in _flash(created.text)
        (silence,) = await SilenceStore(redis).all()
        assert silence.match.given() == {"provider": ["rev"]} and silence.author == "ops"
        assert silence.id in created.text and "active" in created.text

        extended = await client.post("/ui/silences/extend", {"id": silence.id, "ends": "5h"}, follow=True)
        assert "now ends" in _flash(extended.text)
        stored = await SilenceStore(redis).get(silence.id)
        assert stored is not None and stored.ends_at > time.time() + 4.9 * 3600
        bad = await client.post("/ui/silences/extend", {"id": silence.id, "ends": "soon"}, follow=True)
        assert _flash(bad.text).startswith("Not extended: 'soon' is neither a duration")

        expired = await client.post("/ui/silences/expire", {"id": silence.id}, follow=True)
        assert _flash(expired.text) == f"Silence {silence.id} expired."
        assert f'<th scope="row" class="mono">{silence.id}</th>' not in expired.text  # active and pending only
        assert f'<th scope="row" class="mono">{silence.id}</th>' in (await client.get("/ui/silences?state=all")).text
        unknown = await client.post("/ui/silences/expire", {"id": "sil_nope"}, follow=True)
        assert _flash(unknown.text) == "Not expired: no silence 'sil_nope'"


async def test_a_silence_that_mutes_everything_needs_confirming(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    await RecentEvents(redis).append([_facts(1, "rev"), _facts(2, "rev")])
    async with serving_console(api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)) as (_, client, _s):
        await client.sign_in()
        preview = await client.get("/ui/silences/new?matchers=provider%3Drev&ends=1h&preview=1")
        assert "needs confirming: it matches every event of the last 24 h (2)" in preview.text
        assert 'name="force"' in preview.text
        refused = await client.post("/ui/silences", {"matchers": "provider=rev", "ends": "1h"}, follow=True)
        assert _flash(refused.text).startswith("Not created: refused: it matches every event")
        assert "Mute all of it anyway" in refused.text  # back on the preview, with the box to tick
        assert await SilenceStore(redis).all() == []
        forced = await client.post("/ui/silences", {"matchers": "provider=rev", "ends": "1h", "force": "yes"},
                                   follow=True)
        assert _flash(forced.text).startswith("Silence sil_")
        for matchers, said in (("colour=red", "unknown matcher key 'colour'"), ("provider", "is not key=value"),
                               ("severity=loud", "matcher severity")):
            wrong = await client.get(f"/ui/silences/new?matchers={matchers}&ends=1h&preview=1")
            assert said in html.unescape(wrong.text), matchers
        past = await client.get("/ui/silences/new?matchers=provider%3Drev&ends=2020-01-01T00:00&preview=1")
        assert "cannot create the silence" in past.text


async def test_a_silence_past_the_last_time_there_is_is_refused_and_one_stored_is_listed(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, redis: aioredis.Redis
) -> None:
    async with serving_console(api_config(tmp_path, redis_url, sim, receiver, token=TOKEN)) as (_, client, _s):
        await client.sign_in()
        refused = await client.post("/ui/silences", {"matchers": "provider=rev", "starts": "1e12",
                                                     "ends": "1000000000060"}, follow=True)
        assert refused.status == 200
        assert _flash(refused.text) == ("Not created: cannot create the silence: its start or end is after "
                                        "9999-12-31T23:59:59Z, the latest time a silence can have")
        assert await SilenceStore(redis).all() == []
        now = time.time()
        far = Silence(id="sil_00000000000000ff", match=SilenceMatch(provider=["rev"]), starts_at=LATEST + 86400,
                      ends_at=LATEST + 2 * 86400, author="ops", comment="", created_at=now)
        await SilenceStore(redis).put(far, now)  # as one created before the console refused it
        listed = await client.get("/ui/silences")
        assert listed.status == 200 and far.id in listed.text and "9999-12-31T23:59:59Z" in listed.text
