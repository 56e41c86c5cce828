"""Routing: which destinations a table of events reaches (pure), and the dispatcher's
per-route throttle and digest windows (against a real Redis, with a test clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis, RedisSettings, create_pool

from core.route import route_key, route_keys, select
from model.events import DIGEST_TYPE, Event, Severity
from model.routes import Route
from store import keys
from store.digests import DigestBuffer, window_start
from tests.conftest import wait_for
from worker.queue import dispatcher_for


def event(
    type_: str,
    severity: str = "info",
    *,
    to: str | None = None,
    rid: str = "ord-1",
    tags: tuple[str, ...] = (),
    project: str | None = None,
    seq: int = 1,
    title: str | None = None,
    url: str | None = None,
    changes: list[dict[str, Any]] | None = None,
) -> Event:
    """An event as a provider's classifier and the core would make it."""
    provider, kind = type_.split(".")[:2]
    return Event(
        id=f"evt_{provider}_{rid}_{seq}_{type_.rsplit('.', 1)[-1]}",
        type=type_,
        provider=provider,
        resource={"kind": kind, "id": rid, "key": f"{provider}:{kind}:{rid}", "url": url, "title": title or rid},
        seq=seq,
        detected_at="2026-11-23T10:15:02Z",
        severity=Severity(severity),
        summary=f"{type_} {to or ''}",
        data={"changes": changes or [], **({"from": "In Progress", "to": to} if to is not None else {})},
        snapshot=None,
        tags=tags,
        project=project,
    )


ROUTES = [
    Route.model_validate({"match": {"type": ["*.state_changed"], "severity": ["critical", "warning"]},
                          "to": ["ops-slack"]}),
    Route.model_validate({"match": {"provider": "rev", "type": "rev.order.attachment_added"}, "to": ["automation"]}),
    Route.model_validate({"match": {"state": ["failed", "Unsupported File"]}, "to": ["ops-mail", "ops-slack"]}),
    Route.model_validate({"match": {"tags": ["print", "urgent"]}, "to": ["print-team"]}),
    Route.model_validate({"match": {"project": "Site A", "type": "deepomatic.*"}, "to": ["field-mail"]}),
    Route.model_validate({"match": {"provider": ["artistree", "rev"], "severity": "info"}, "to": ["archive"]}),
]

TABLE: list[tuple[str, Event, list[str]]] = [
    ("failed order pages slack and mail", event("artistree.order.state_changed", "critical", to="Failed"),
     ["ops-slack", "ops-mail"]),
    ("state match ignores case", event("artistree.order.state_changed", "critical", to="FAILED"),
     ["ops-slack", "ops-mail"]),
    ("certified is info: archive only", event("artistree.order.state_changed", "info", to="Human Certified"),
     ["archive"]),
    ("warning state change goes to slack", event("rev.order.state_changed", "warning", to="Finding Transcriptionist"),
     ["ops-slack"]),
    ("a transcript ready reaches automation and archive", event("rev.order.attachment_added"),
     ["automation", "archive"]),
    ("a tag selects its team", event("artistree.order.reviewed", "warning", tags=("urgent", "x")), ["print-team"]),
    ("unsupported file, tagged print", event("artistree.order.state_changed", "critical", to="Unsupported File",
                                             tags=("print",)), ["ops-slack", "ops-mail", "print-team"]),
    ("project and provider glob", event("deepomatic.work_order.conformity_error", "critical", project="Site A"),
     ["field-mail"]),
    ("other project: nothing", event("deepomatic.work_order.conformity_error", "critical", project="Site B"), []),
    ("info from another provider: nothing", event("sartiq.upload.images_skipped"), []),
    ("no state: the state route does not match", event("artistree.order.analysis_failed", "warning"), []),
]


@pytest.mark.parametrize(("case", "ev", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_routes_select_exactly_the_right_destinations(case: str, ev: Event, expected: list[str]) -> None:
    assert [s.destination for s in select(ev, ROUTES)] == expected


def test_the_first_route_to_select_a_destination_is_the_one_that_applies() -> None:
    sel = {s.destination: s.route for s in select(event("artistree.order.state_changed", "critical", to="Failed"),
                                                   ROUTES)}
    keys_ = route_keys(ROUTES)
    assert sel == {"ops-slack": keys_[0], "ops-mail": keys_[2]}


def test_an_empty_match_selects_everything() -> None:
    assert [s.destination for s in select(event("x.y.z"), [Route(to=["all"])])] == ["all"]


# -- throttle and digest in the dispatcher ------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def arq(redis_url: str) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    yield pool
    await pool.aclose()


async def equals(awaitable: Awaitable[Any], expected: Any) -> bool:
    """For `wait_for(lambda: equals(redis.xlen(…), 2))`."""
    return await awaitable == expected


async def publish(redis: aioredis.Redis, *events: Event) -> None:
    for e in events:
        await redis.xadd(keys.OUTBOX, {"e": e.to_json()})


async def deliveries(arq: ArqRedis) -> list[tuple[str, dict[str, Any]]]:
    """(destination, event) of every queued delivery: single jobs and batch jobs."""
    out = []
    for j in await arq.queued_jobs():
        if j.function == "deliver":
            out.append((j.args[1], orjson.loads(j.args[0])))
        elif j.function == "deliver_events":
            out.extend((j.args[1], orjson.loads(raw)) for raw in j.args[0])
    return sorted(out, key=lambda x: (x[0], x[1]["id"]))


async def test_throttle_lets_one_event_type_per_resource_through_per_window(arq: ArqRedis) -> None:
    routes = [Route.model_validate({"to": ["slack"], "throttle": "0.4s"})]
    d = dispatcher_for(arq, routes, "t", enabled_destinations={"slack"})
    await d.ensure_group()
    progress = "artistree.order.progress_changed"
    await publish(arq, event(progress, seq=1), event(progress, seq=2), event(progress, seq=3),
                  event(progress, rid="ord-2", seq=1), event("artistree.order.reviewed", seq=4))
    await d.step()
    got = [(dest, e["id"]) for dest, e in await deliveries(arq)]
    assert got == [("slack", "evt_artistree_ord-1_1_progress_changed"), ("slack", "evt_artistree_ord-1_4_reviewed"),
                   ("slack", "evt_artistree_ord-2_1_progress_changed")]

    async def window_over() -> bool:
        return not await arq.exists(keys.throttle(route_key(routes[0]), "artistree:order:ord-1", progress))

    await wait_for(window_over, timeout=2, what="the throttle window to end")
    await publish(arq, event(progress, seq=5))
    await d.step()
    assert "evt_artistree_ord-1_5_progress_changed" in {e["id"] for _, e in await deliveries(arq)}


async def test_a_throttled_route_sends_the_first_event_to_each_of_its_destinations(arq: ArqRedis) -> None:
    routes = [Route.model_validate({"to": ["slack", "hook"], "throttle": "1m"})]
    d = dispatcher_for(arq, routes, "t", enabled_destinations={"slack", "hook"})
    await d.ensure_group()
    progress = "artistree.order.progress_changed"
    await publish(arq, event(progress, seq=1), event(progress, seq=2))
    await d.step()
    first = "evt_artistree_ord-1_1_progress_changed"
    assert [(dest, e["id"]) for dest, e in await deliveries(arq)] == [("hook", first), ("slack", first)]


async def test_digest_gathers_a_window_into_one_delivery(arq: ArqRedis) -> None:
    routes = [
        Route.model_validate({"match": {"severity": "critical"}, "to": ["pager"]}),
        Route.model_validate({"name": "daily mail", "to": ["mail"], "digest": "5m"}),
    ]
    start = window_start(1_795_428_000.0, 300)
    clock = Clock(start + 10)
    d = dispatcher_for(arq, routes, "t", enabled_destinations={"pager", "mail"}, clock=clock)
    await d.ensure_group()
    failed = event("artistree.order.state_changed", "critical", to="Failed", seq=1)
    first = [failed, event("rev.order.attachment_added", rid="TC1", seq=1),
             event("artistree.order.reviewed", rid="ord-2", seq=2)]
    await publish(arq, *first)
    await d.step()
    clock.now = start + 200
    await publish(arq, failed)  # the same event again (a reclaimed outbox entry): counted once
    await d.step()
    assert [dest for dest, _ in await deliveries(arq)] == ["pager"]  # the mail waits for the window

    clock.now = start + 300 + 1  # the window has ended
    late = event("artistree.order.reviewed", rid="ord-3", seq=9)
    await publish(arq, late)  # after the end: the next window
    await d.step()
    mails = [e for dest, e in await deliveries(arq) if dest == "mail"]
    assert len(mails) == 1
    digest = mails[0]
    assert digest["type"] == DIGEST_TYPE
    assert digest["severity"] == "critical"
    assert digest["data"]["count"] == 3
    assert [e["id"] for e in digest["data"]["events"]] == [e.id for e in first]
    assert digest["data"]["route_name"] == "daily mail"
    assert digest["data"]["window"]["start"] == "2026-11-23T10:00:00Z"

    assert await d.flush_digests() == 0  # a window is sent once
    clock.now = start + 600 + 1
    assert await d.flush_digests() == 1  # the late event, in the next window
    mails = [e for dest, e in await deliveries(arq) if dest == "mail"]
    assert sorted(m["data"]["count"] for m in mails) == [1, 3]
    assert await DigestBuffer(arq).pending() == 0


async def test_a_digest_claim_left_by_a_dead_worker_is_sent_again_once(arq: ArqRedis) -> None:
    buffer = DigestBuffer(arq, reclaim_after=30)
    t0 = window_start(1_795_428_000.0, 60)
    await buffer.add("n-mail", "mail", event("rev.order.attachment_added").to_json(), 60, now=t0 + 1)
    (claimed,) = await buffer.claim(now=t0 + 61)  # a worker claims the window, then dies
    assert await buffer.claim(now=t0 + 62) == []  # nobody else takes it meanwhile
    (again,) = await buffer.claim(now=t0 + 61 + 31)  # until the claim is stale
    assert again == claimed
    digest = await buffer.collect(again)
    assert digest is not None and digest.data["count"] == 1
    await buffer.done(again)
    assert await buffer.claim(now=t0 + 200) == []


# -- a route is known by its key, not its place in the file ----------------------------------


def test_a_route_key_follows_its_name_or_its_match_and_targets() -> None:
    named = Route.model_validate({"name": "page on failures", "match": {"state": "Failed"}, "to": ["pager"]})
    assert route_key(named) == route_key(named.model_copy(update={"match": Route(to=["x"]).match, "to": ["y"]}))
    assert route_key(named) != route_key(named.model_copy(update={"name": "page on failure"}))
    plain = Route.model_validate({"match": {"state": "Failed"}, "to": ["pager"], "throttle": "1m"})
    assert route_key(plain) == route_key(plain.model_copy(update={"throttle": 120.0, "template": {"body": "x"}}))
    assert route_key(plain) != route_key(plain.model_copy(update={"to": ["pager", "mail"]}))
    assert route_key(plain).startswith("h-") and route_key(named).startswith("n-")
    assert all(c.isalnum() or c == "-" for c in route_key(named))  # safe in a Redis key and a digest member


def test_identical_unnamed_routes_get_distinct_keys_and_reordering_keeps_every_key() -> None:
    a = Route.model_validate({"match": {"severity": "critical"}, "to": ["pager"]})
    b = Route.model_validate({"name": "mail", "to": ["mail"], "digest": "5m"})
    keys_ = route_keys([a, b, a])
    assert len(set(keys_)) == 3 and keys_[2] == keys_[0] + "~2"
    assert dict(zip(route_keys([b, a]), [b, a], strict=True)) == {keys_[1]: b, keys_[0]: a}


async def test_reordering_routes_keeps_throttles_and_digest_windows(arq: ArqRedis) -> None:
    """A worker restarted with `[[routes]]` reordered: the throttle window still holds and the
    open digest window is sent with its own route's name and template."""
    from notifiers.templates import TemplateBook

    throttled = Route.model_validate({"match": {"type": "*.progress_changed"}, "to": ["slack"], "throttle": "1h"})
    digest = Route.model_validate({"name": "daily mail", "match": {"type": "*.reviewed"}, "to": ["mail"],
                                   "digest": "5m", "template": {"digest_subject": "DAILY {{ count }}"}})
    other = Route.model_validate({"name": "weekly mail", "match": {"type": "*.reviewed"}, "to": ["mail"],
                                  "digest": "1h", "template": {"digest_subject": "WEEKLY {{ count }}"}})
    start = window_start(1_795_428_000.0, 300)
    clock = Clock(start + 10)
    before = dispatcher_for(arq, [throttled, digest, other], "t1", enabled_destinations={"slack", "mail"}, clock=clock)
    await before.ensure_group()
    progress = "artistree.order.progress_changed"
    await publish(arq, event(progress, seq=1), event("artistree.order.reviewed", seq=2))
    await before.step()
    assert [d for d, _ in await deliveries(arq)] == ["slack"]

    reordered = [other, throttled, digest]
    after = dispatcher_for(arq, reordered, "t2", enabled_destinations={"slack", "mail"}, clock=clock)
    await after.ensure_group()
    await publish(arq, event(progress, seq=3))  # inside the throttle window: held back
    await after.step()
    assert [d for d, _ in await deliveries(arq)] == ["slack"]

    clock.now = start + 301  # the 5-minute window ends (the hourly one has not)
    assert await after.flush_digests() == 1
    (mail,) = [e for d, e in await deliveries(arq) if d == "mail"]
    assert mail["data"]["route_name"] == "daily mail"
    book = TemplateBook("mail", routes=reordered)
    assert book.render("subject", Event.from_dict(mail)) == "DAILY 1"


# -- templates: errors found by `statehook check`, not at 3 am --------------------------------


def test_template_errors_name_the_field_and_the_problem(tmp_path: Path) -> None:
    """`statehook check` (load_config) refuses the config with one line per bad template."""
    from config import ConfigError
    from tests.kit import write_config

    with pytest.raises(ConfigError) as raised:
        write_config(
            tmp_path / "statehook.toml", redis_url="redis://127.0.0.1:1/0", providers={},
            destinations={
                "ops-mail": {"kind": "email", "host": "127.0.0.1", "from": "a@example.com", "to": ["b@example.com"],
                             "subject": "{{ event.summary ", "templates": {"html": "<p>{{ evnt.id }}</p>"}},
                "ops-slack": {"kind": "slack", "webhook_url": "https://hooks.example/x",
                              "templates": {"slack": "{{ title }} {{ ''.__class__.__mro__ }}"}},
            },
            routes=[{"to": ["ops-mail"], "template": "{{ to_state }} {{ event.data.nope }}"},
                    {"to": ["ops-slack"],
                     "template": {"digest_text": "{% for e in events %}{{ e.event.id }}{% endfor %}",
                                  "subject": "{{ severity|upper }} {{ title }}"}}],
        )
    problems = [p.split(": ", 1)[1] for p in raised.value.problems]
    assert problems == [
        "destinations.ops-mail.templates.html: unknown variable: 'evnt' is undefined",
        "destinations.ops-mail.subject: line 1: unexpected end of template, expected 'end of print statement'.",
        "destinations.ops-slack.templates.slack: not allowed in the sandbox: access to attribute '__class__' of 'str' "
        "object is unsafe.",
        "routes.0.template.body: unknown variable: 'dict object' has no attribute 'nope'",
    ]
    assert all(p.startswith(str(tmp_path / "statehook.toml") + ":") for p in raised.value.problems)


def test_a_template_that_fails_on_a_real_event_falls_back_to_the_default() -> None:
    from notifiers.templates import TemplateBook

    book = TemplateBook("ops", {"subject": "{{ event.data.reviewer }} reviewed it"})
    ev = event("artistree.order.state_changed", "critical", to="Failed")
    assert book.render("subject", ev) == f"[CRITICAL] {ev.summary}"
