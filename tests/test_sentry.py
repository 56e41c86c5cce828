"""Secrets never leave the process: not in log lines of a real run, not in Sentry events
(built by hand, sent through a real `sentry_sdk.init` with a capturing transport, and
reported by the ARQ integration from a failing job of a real worker)."""

from __future__ import annotations

import io
import logging
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
import sentry_sdk
from arq.connections import create_pool
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from sentry_sdk.utils import event_from_exception

from config import Config
from model.resources import ResourceRef
from simulator.artistree import ArtistreeSim
from simulator.core import Fault, SimProvider, Simulator
from simulator.receivers import WebhookReceiver
from simulator.rev import RevSim
from store import keys
from store.snapshots import Store, WatchMeta
from tests.conftest import wait_for
from tests.kit import WHSEC, running_worker
from tests.test_api import api_config
from worker import redact
from worker.logs import setup_logging
from worker.sentry import before_breadcrumb, before_send, init_sentry
from worker.settings import redis_settings

ARTISTREE_SECRET = "cs-artistree-9f8e7d6c5b4a3921"
REV_CLIENT_KEY = "rk-client-1a2b3c4d5e6f7081"
REV_USER_KEY = "ru-user-6f7a8b9c0d1e2f30"
API_TOKEN = "api-token-51c0ffee5eed1234"
HOOK_TOKEN = "hook-token-77aa88bb99cc00dd"
DEST_TOKEN = "dest-token-0a1b2c3d4e5f6a7b"
SECRETS = (ARTISTREE_SECRET, REV_CLIENT_KEY, REV_USER_KEY, API_TOKEN, HOOK_TOKEN, DEST_TOKEN,
           WHSEC.removeprefix("whsec_"))


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def sim_providers() -> list[SimProvider]:
    return [ArtistreeSim(client_secret=ARTISTREE_SECRET), RevSim(client_key=REV_CLIENT_KEY, user_key=REV_USER_KEY)]


def secret_config(tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver) -> Config:
    providers = {
        "artistree": {"base_url": sim.url("artistree"), "token_url": sim.url("artistree") + "/oauth2/token",
                      "client_id": "sim-client", "client_secret": ARTISTREE_SECRET},
        "rev": {"base_url": sim.url("rev"), "client_key": REV_CLIENT_KEY, "user_key": REV_USER_KEY},
    }
    destination = {"kind": "webhook", "url": f"{receiver.url}?token={DEST_TOKEN}", "secret": WHSEC,
                   "retry_schedule": [0.05, 0.05], "jitter": 0.0}
    return api_config(tmp_path, redis_url, sim, receiver, token=API_TOKEN, hook_tokens={"rev": HOOK_TOKEN},
                      providers=providers, destination=destination, worker={"health_interval": "0.5s"})


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def sentry_off() -> Iterator[None]:
    yield
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


class CapturingTransport(Transport):
    """Keeps every envelope instead of sending it: no network."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        return [item.payload.json for env in self.envelopes for item in env.items
                if item.type == "event" and item.payload.json is not None]

    def text(self) -> str:
        return "\n".join(orjson.dumps(e, default=str).decode() for e in self.events())


# ---- the redactor ------------------------------------------------------------------------


def test_the_secrets_of_a_config_are_collected(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    found = set(redact.secret_values(secret_config(tmp_path, redis_url, sim, receiver)))
    assert {ARTISTREE_SECRET, REV_CLIENT_KEY, REV_USER_KEY, API_TOKEN, HOOK_TOKEN, WHSEC} <= found
    assert f"{receiver.url}?token={DEST_TOKEN}" in found  # a webhook URL is a secret as a whole


def test_credential_shapes_are_redacted_without_config() -> None:
    r = redact.Redactor()
    cases = {
        "Authorization: Bearer eyJhbGciOi.J9x-y_z": "eyJhbGciOi",
        "Authorization: Token 0123456789abcdef0123": "0123456789abcdef0123",
        "Authorization: Rev ck-AAAA:uk-BBBB": "uk-BBBB",
        "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw set": "MfKQ9r8",
        "posting to https://hooks.slack.com/services/T0/B0/XYZsecret": "XYZsecret",
        "redis://:hunter2@redis:6379/0": "hunter2",
        "GET https://x.example/a?X-Amz-Signature=abc123&b=1": "abc123",
        'password="p4ssw0rd!"': "p4ssw0rd",
        "{'client_secret': 'shh-123456'}": "shh-123456",
    }
    for text, secret in cases.items():
        assert secret not in r.text(text), text
    assert r.text("order TC432432: Transcribing → Complete") == "order TC432432: Transcribing → Complete"
    assert r.value({"rkey": "rev:order:1", "headers": {"Authorization": "x"}, "n": 3}) == {
        "rkey": "rev:order:1", "headers": {"Authorization": redact.MASK}, "n": 3}


# ---- logs --------------------------------------------------------------------------------


async def test_secrets_are_absent_from_the_logs_of_a_run(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver,
    restore_logging: None,
) -> None:
    """A worker run at debug, JSON lines: polls, an error whose provider body echoes the
    keys, events, a retried delivery; and lines that quote secrets outright."""
    config = secret_config(tmp_path, redis_url, sim, receiver)
    redact.configure(redact.secret_values(config))
    out = io.StringIO()
    setup_logging("debug", "json", stream=out)
    number = sim["rev"].add_order(status="Transcribing")
    oid = sim["artistree"].add_order(state="In Progress")["order_id"]
    rkeys = [ResourceRef("rev", "order", number).key, ResourceRef("artistree", "order", oid).key]
    echo = orjson.dumps({"code": 1001, "message": f"keys Rev {REV_CLIENT_KEY}:{REV_USER_KEY} are not allowed"})
    sim.faults.add("rev", f"/api/v1/orders/{number}", Fault(status=400, body=echo, times=1))
    receiver.script = [500]
    async with running_worker(config):
        await Store(redis).add_watches([(k, WatchMeta(interval=0.2)) for k in rkeys])
        await wait_for(lambda: redis.hexists(keys.STATE, rkeys[0]), what="rev baseline after the 400")
        await wait_for(lambda: redis.hexists(keys.STATE, rkeys[1]), what="artistree baseline")
        sim["rev"].set_status(number, "Cancelled")
        sim["artistree"].set_state(oid, "Failed")
        await wait_for(lambda: len(receiver.delivered) >= 2, what="deliveries")
        log = logging.getLogger("statehook.test")
        log.warning("calling %s with Authorization: Bearer %s", f"{receiver.url}?token={DEST_TOKEN}", API_TOKEN)
        try:
            raise RuntimeError(f"hook {HOOK_TOKEN} refused; client_secret={ARTISTREE_SECRET}")
        except RuntimeError:
            log.exception("a failure that quotes secrets")
    text = out.getvalue()
    assert leaked(text) == []
    lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len([x for x in text.splitlines() if x.strip()]), "every line is JSON"
    events = [x for x in lines if x["msg"].startswith("event ")]
    assert len(events) >= 2 and all(x["level"] == "info" and x["rkey"] and x["event_id"] for x in events)
    assert any(x["level"] == "debug" and x.get("outcomes") for x in lines), "a line per poll batch"
    assert any(x["level"] == "debug" and x["msg"].startswith("delivered") and x["destination"] == "hook"
               for x in lines), "a line per delivery"
    assert any("HTTP 400" in x["msg"] and redact.MASK in x["msg"] for x in lines), "the echoed keys, masked"
    assert any(x.get("exc") and "RuntimeError" in x["exc"] for x in lines)


# ---- Sentry ---------------------------------------------------------------------------------


def test_before_send_removes_secrets_from_every_part_of_an_event(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver
) -> None:
    config = secret_config(tmp_path, redis_url, sim, receiver)
    redact.configure(redact.secret_values(config))
    try:
        raise ConnectionError(f"POST {receiver.url}?token={DEST_TOKEN} failed with Rev {REV_CLIENT_KEY}:{REV_USER_KEY}")
    except ConnectionError:
        event, hint = event_from_exception(sys.exc_info())
    event["message"] = f"whsec_{WHSEC.removeprefix('whsec_')} and {ARTISTREE_SECRET}"
    event["breadcrumbs"] = {"values": [{"category": "statehook", "message": f"token={API_TOKEN}"},
                                       {"category": "http", "data": {"url": f"/v1/hooks/rev/{HOOK_TOKEN}"}}]}
    event["extra"] = {"settings": {"client_secret": ARTISTREE_SECRET}, "args": [f"Bearer {API_TOKEN}"]}
    event["request"] = {"url": f"http://127.0.0.1/v1/hooks/rev/{HOOK_TOKEN}",
                        "headers": {"Authorization": f"Bearer {API_TOKEN}", "Accept": "application/json"},
                        "data": {"order_number": "TC1", "password": "hunter2hunter2"}}
    cleaned = before_send(event, hint)
    text = orjson.dumps(cleaned).decode()
    assert leaked(text) == [] and "hunter2hunter2" not in text
    value = cleaned["exception"]["values"][0]
    assert value["type"] == "ConnectionError" and value["value"].startswith("POST ")
    assert cleaned["request"]["headers"]["Accept"] == "application/json"
    crumb = before_breadcrumb({"message": f"GET {sim.url('rev')} with Rev {REV_CLIENT_KEY}:{REV_USER_KEY}"}, {})
    assert leaked(orjson.dumps(crumb).decode()) == []


def test_sentry_events_sent_through_the_sdk_carry_no_secrets(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, sentry_off: None
) -> None:
    config = secret_config(tmp_path, redis_url, sim, receiver)
    transport = CapturingTransport()
    assert init_sentry(config, dsn="https://public@sentry.invalid/1", transport=transport)
    log = logging.getLogger("statehook.test")
    log.warning("refreshing with client_secret %s", ARTISTREE_SECRET)  # a breadcrumb
    log.error("delivery to %s?token=%s failed", receiver.url, DEST_TOKEN)  # an event
    try:
        raise ValueError(f"hook token {HOOK_TOKEN} and api token {API_TOKEN}")
    except ValueError as exc:
        sentry_sdk.capture_exception(exc)
    sentry_sdk.flush(timeout=5)
    events = transport.events()
    assert len(events) >= 2
    assert leaked(transport.text()) == []
    assert any(v["type"] == "ValueError" for e in events for v in e.get("exception", {}).get("values", []))
    crumbs = [c for e in events for c in (e.get("breadcrumbs") or {}).get("values", [])]
    assert any("refreshing with client_secret" in (c.get("message") or "") for c in crumbs)


def test_the_local_variables_of_a_frame_are_not_sent(
    tmp_path: Path, redis_url: str, sim: Simulator, receiver: WebhookReceiver, sentry_off: None
) -> None:
    """A token fetched at run time sits in a local variable under no name a redactor knows:
    whatever the sentry-sdk version, the event carries no frame's variables."""
    config = secret_config(tmp_path, redis_url, sim, receiver)
    transport = CapturingTransport()
    assert init_sentry(config, dsn="https://public@sentry.invalid/1", transport=transport)

    fetched = "eyJ" + secrets.token_hex(16)

    def refresh(token: str) -> None:
        raise RuntimeError("refresh failed")

    try:
        refresh(fetched)
    except RuntimeError as exc:
        sentry_sdk.capture_exception(exc)
    sentry_sdk.flush(timeout=5)
    (event,) = transport.events()
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames and not any(f.get("vars") for f in frames)
    assert fetched not in transport.text()


async def test_a_failing_job_is_reported_by_the_arq_integration_without_secrets(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, receiver: WebhookReceiver,
    sentry_off: None,
) -> None:
    """Sentry is initialised before the worker is made, as `statehook run` does; a job
    whose argument (and so whose exception message) carries a secret fails."""
    config = secret_config(tmp_path, redis_url, sim, receiver)
    transport = CapturingTransport()
    init_sentry(config, dsn="https://public@sentry.invalid/1", transport=transport)
    pool = await create_pool(redis_settings(redis_url))
    try:
        async with running_worker(config):
            await pool.enqueue_job("poll_batch", [f"broken-{API_TOKEN}"])

            def reported() -> bool:
                sentry_sdk.flush(timeout=1)
                return any("exception" in e for e in transport.events())

            await wait_for(reported, what="the job's error in Sentry")
    finally:
        await pool.aclose()
    (event,) = [e for e in transport.events() if "exception" in e]
    value = event["exception"]["values"][-1]
    assert value["type"] == "ValueError" and value["mechanism"]["type"] == "arq"
    assert leaked(transport.text()) == []
    assert redact.MASK in value["value"]
