"""Email against a real SMTP server (aiosmtpd) on loopback: STARTTLS with a throwaway CA
and certificate (trustme), implicit TLS, a plain relay, login; the message a state change
becomes and its threading headers; 4xx retried, 5xx dead-lettered; a digest window."""

from __future__ import annotations

import email
import email.policy
import hashlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from config import Config
from model.events import Event
from model.outcomes import PermanentFailure, TransientFailure
from model.resources import ResourceRef
from notifiers.base import NotifierContext
from notifiers.email import EmailNotifier, EmailSettings
from simulator.core import Simulator
from store import keys
from tests.conftest import free_port, wait_for
from tests.kit import running_worker, write_config
from tests.test_routes import event, publish

USER, PASSWORD = "statehook", "s3cret-pw"
FAST = {"retry_schedule": [0.05, 0.05, 0.05], "jitter": 0.0}


@dataclass(frozen=True, slots=True)
class Mail:
    message: EmailMessage
    mail_from: str
    rcpt_tos: list[str]
    tls: bool
    login: str | None


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it accepts; `script` answers DATA (e.g. a 451)."""

    mails: list[Mail] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.script:
            reply = self.script.pop(0)
            if not reply.startswith("2"):
                self.refused.append(reply)
                return reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        tls = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.mails.append(Mail(message, str(envelope.mail_from), list(envelope.rcpt_tos), tls, login))  # type: ignore[arg-type]
        return "250 2.0.0 accepted"


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and \
        auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@dataclass
class SmtpServer:
    inbox: Inbox
    port: int
    ca_file: Path
    controller: Controller


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def start_server(tmp_path: Path, ca: trustme.CA, server_tls: ssl.SSLContext, security: str) -> SmtpServer:
    inbox = Inbox()
    port = free_port()
    kwargs: dict[str, Any] = {"authenticator": authenticator}
    if security == "starttls":
        kwargs.update(tls_context=server_tls, require_starttls=True)
    elif security == "tls":
        kwargs.update(ssl_context=server_tls, auth_require_tls=False)  # aiosmtpd sees TLS only after STARTTLS
    else:
        kwargs.update(auth_require_tls=False)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return SmtpServer(inbox, port, ca_file, controller)


@pytest.fixture
def smtp(tmp_path: Path, ca: trustme.CA, server_tls: ssl.SSLContext) -> Iterator[SmtpServer]:
    server = start_server(tmp_path, ca, server_tls, "starttls")
    yield server
    server.controller.stop()


def mail_block(server: SmtpServer, **extra: Any) -> dict[str, Any]:
    return {"kind": "email", "host": "127.0.0.1", "port": server.port, "ca_file": str(server.ca_file),
            "username": USER, "password": PASSWORD, "from": "statehook@example.com",
            "to": ["ops@example.com", "oncall@example.com"], **FAST, **extra}


def config(tmp_path: Path, redis_url: str, destinations: dict[str, dict[str, Any]],
           routes: list[dict[str, Any]] | None = None, **extra: Any) -> Config:
    return write_config(tmp_path / "statehook.toml", redis_url=redis_url, providers=extra.pop("providers", {}),
                        destinations=destinations, routes=routes or [{"to": list(destinations)}], **extra)


def parts(message: EmailMessage) -> list[tuple[str, str]]:
    return [(p.get_content_type(), p.get_content()) for p in message.iter_parts()]  # type: ignore[attr-defined]


def failed(rid: str = "ord-1", seq: int = 1) -> Event:
    return event("artistree.order.state_changed", "critical", to="Failed", rid=rid, seq=seq, title=f"Poster {rid}",
                 url=f"https://human.artistree.example/orders/{rid}")


async def test_state_changes_are_mailed_over_starttls_as_text_then_html_and_thread_per_order(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, sim: Simulator, smtp: SmtpServer
) -> None:
    oid = sim["artistree"].add_order(state="In Progress", title="Poster v3")["order_id"]
    rkey = ResourceRef("artistree", "order", oid).key
    cfg = config(
        tmp_path, redis_url, {"ops-mail": mail_block(smtp)},
        providers={"artistree": {"base_url": sim.url("artistree"), "token_url": sim.url("artistree") + "/oauth2/token",
                                 "client_id": "sim-client", "client_secret": "sim-secret"}},
        watches=[{"provider": "artistree", "ids": [oid], "interval": "0.2s"}],
    )
    async with running_worker(cfg):
        await wait_for(lambda: redis.hexists(keys.STATE, rkey), what="baseline")
        sim["artistree"].set_state(oid, "Action Required")
        await wait_for(lambda: len(smtp.inbox.mails) == 1, what="the first mail")
        sim["artistree"].set_state(oid, "Failed")
        await wait_for(lambda: len(smtp.inbox.mails) == 2, what="the second mail")

    first, second = smtp.inbox.mails
    assert first.tls and first.login == USER
    assert first.mail_from == "statehook@example.com"
    assert first.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    m = first.message
    assert m["Subject"] == "[CRITICAL] Order “Poster v3”: In Progress → Action Required"
    assert m.get_content_type() == "multipart/alternative"
    (text_type, text), (html_type, html) = parts(m)
    assert (text_type, html_type) == ("text/plain", "text/html")  # text first, HTML last
    assert "State:     In Progress → Action Required" in text
    assert f"Resource:  Poster v3 (order {oid})" in text
    assert f"/v1/orders/{oid}" in text and f'href="{sim.url("artistree")}/v1/orders/{oid}"' in html
    assert "<strong>Action Required</strong>" in html

    root = f"<{hashlib.sha256(rkey.encode()).hexdigest()[:32]}@statehook>"
    ids = []
    for mail in (first, second):
        event_id = mail.message["X-Statehook-Event"]
        assert mail.message["Message-ID"] == f"<{event_id}@statehook>"
        assert mail.message["In-Reply-To"] == root and mail.message["References"] == root
        ids.append(event_id)
    assert ids[0] != ids[1]
    assert second.message["Subject"].endswith("Action Required → Failed")


@pytest.mark.parametrize("security", ["tls", "plain"])
async def test_implicit_tls_and_a_plain_relay(
    tmp_path: Path, redis: aioredis.Redis, ca: trustme.CA, server_tls: ssl.SSLContext, security: str
) -> None:
    server = start_server(tmp_path, ca, server_tls, security)
    try:
        settings = EmailSettings.model_validate(mail_block(server, security=security))
        async with aiohttp.ClientSession() as session:
            notifier = EmailNotifier("mail", settings, NotifierContext(session=session))
            done = await notifier.send(failed())
        assert done.status == 250
        (mail,) = server.inbox.mails
        assert mail.tls is (security == "tls")
        assert mail.login == USER
        assert mail.message["Message-ID"] == f"<{failed().id}@statehook>"
    finally:
        server.controller.stop()


async def test_a_certificate_that_does_not_verify_is_never_sent_to(
    redis: aioredis.Redis, smtp: SmtpServer
) -> None:
    untrusted = EmailSettings.model_validate({**mail_block(smtp), "ca_file": None})
    unverified = EmailSettings.model_validate({**mail_block(smtp), "ca_file": None, "tls_verify": False})
    async with aiohttp.ClientSession() as session:
        ctx = NotifierContext(session=session)
        with pytest.raises(TransientFailure, match="connection failed"):
            await EmailNotifier("mail", untrusted, ctx).send(failed())
        assert smtp.inbox.mails == []
        await EmailNotifier("mail", unverified, ctx).send(failed())  # tls_verify = false: for tests only
    assert len(smtp.inbox.mails) == 1 and smtp.inbox.mails[0].tls


async def test_a_4xx_reply_is_retried_and_delivered(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, smtp: SmtpServer
) -> None:
    smtp.inbox.script = ["451 4.3.0 Mail server temporarily rejected message"]
    cfg = config(tmp_path, redis_url, {"ops-mail": mail_block(smtp)})
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: len(smtp.inbox.mails) == 1, what="the mail after a 451")
    assert smtp.inbox.refused == ["451 4.3.0 Mail server temporarily rejected message"]
    attempts = await redis.lrange(keys.attempts(failed().id), 0, -1)
    assert [b'"status":451' in a for a in reversed(attempts)] == [True, False]
    assert await redis.xlen(keys.DLQ) == 0


async def test_a_5xx_reply_is_dead_lettered_with_the_servers_reply(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, smtp: SmtpServer
) -> None:
    smtp.inbox.script = ["554 5.7.1 Relay access denied"]
    cfg = config(tmp_path, redis_url, {"ops-mail": mail_block(smtp)})
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: redis.xlen(keys.DLQ), what="a dead letter")
    (_, fields), = await redis.xrange(keys.DLQ)
    assert fields[b"reason"] == b"SMTP 554: 5.7.1 Relay access denied"
    assert fields[b"status"] == b"554" and fields[b"attempts"] == b"1"
    assert smtp.inbox.mails == []


async def test_a_refused_login_is_dead_lettered_without_the_password(
    redis: aioredis.Redis, smtp: SmtpServer
) -> None:
    settings = EmailSettings.model_validate({**mail_block(smtp), "password": "wrong-" + PASSWORD})
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PermanentFailure) as failure:
            await EmailNotifier("mail", settings, NotifierContext(session=session)).send(failed())
    assert failure.value.status == 535
    assert PASSWORD not in failure.value.reason


async def test_an_unreachable_server_is_retried_then_dead_lettered(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, smtp: SmtpServer
) -> None:
    block = {**mail_block(smtp), "port": free_port(), "retry_schedule": [0.05, 0.05]}
    cfg = config(tmp_path, redis_url, {"ops-mail": block})
    async with running_worker(cfg):
        await publish(redis, failed())
        await wait_for(lambda: redis.xlen(keys.DLQ), what="a dead letter")
    (_, fields), = await redis.xrange(keys.DLQ)
    assert fields[b"reason"].startswith(b"gave up after 3 attempts: connection failed")


async def test_a_digest_route_sends_one_mail_per_window(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, smtp: SmtpServer
) -> None:
    cfg = config(tmp_path, redis_url, {"ops-mail": mail_block(smtp), "pager": {"kind": "console"}},
                 routes=[{"name": "ops digest", "to": ["ops-mail"], "digest": "1s"},
                         {"match": {"severity": "critical"}, "to": ["pager"]}])
    events = [failed("ord-1"), event("rev.order.attachment_added", rid="TC1", title="Interview"),
              event("artistree.order.reviewed", "warning", rid="ord-2")]
    async with running_worker(cfg):
        await publish(redis, *events)
        await wait_for(lambda: len(smtp.inbox.mails) == 1, what="the digest mail")
    (mail,) = smtp.inbox.mails
    m = mail.message
    assert m["Subject"].startswith("[CRITICAL] 3 events (")
    assert m["Message-ID"].startswith("<dig_")
    (_, text), (_, html) = parts(m)
    for e in events:
        assert e.summary in text and e.summary in html
    assert text.index(events[0].summary) < text.index(events[1].summary) < text.index(events[2].summary)


async def test_destination_templates_shape_subject_and_body(
    redis: aioredis.Redis, smtp: SmtpServer
) -> None:
    settings = EmailSettings.model_validate({
        **mail_block(smtp), "subject": "{{ event.provider }}: {{ title }} is {{ to_state }}",
        "templates": {"text": "Order {{ title }} needs you: {{ url }}"},
    })
    async with aiohttp.ClientSession() as session:
        await EmailNotifier("mail", settings, NotifierContext(session=session)).send(failed())
    m = smtp.inbox.mails[0].message
    assert m["Subject"] == "artistree: Poster ord-1 is Failed"
    (_, text), (_, html) = parts(m)
    assert text.strip() == "Order Poster ord-1 needs you: https://human.artistree.example/orders/ord-1"
    assert "<pre" in html and "needs you" in html  # the HTML part says what the text says


# ---- ca_file: checked with the config, and a worker that finds it gone does not crash ----------------


def bad_ca_file(tmp_path: Path, what: str) -> Path:
    if what == "missing":
        return tmp_path / "nonexistent.pem"
    if what == "a directory":
        return tmp_path
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    return tmp_path / "garbage.pem"


@pytest.mark.parametrize("what, problem", [
    ("missing", "no such file"),
    ("a directory", "a directory, not a CA bundle"),
    ("not PEM", "not a CA bundle TLS can load (PEM certificates)"),
])
@pytest.mark.parametrize("command", [["check", "--no-redis"], ["notify", "test", "mail"]])
def test_a_ca_file_tls_cannot_load_stops_check_and_notify_test_with_one_line(
    tmp_path: Path, redis_server: str, what: str, problem: str, command: list[str]
) -> None:
    """It passed `check`, then `notify test` (and a worker's start) ended in FileNotFoundError."""
    from typer.testing import CliRunner

    from worker.cli import app

    ca_file = bad_ca_file(tmp_path, what)
    path = tmp_path / "statehook.toml"
    path.write_text(f'redis_url = "{redis_server}"\n\n[destinations.mail]\nkind = "email"\nhost = "127.0.0.1"\n'
                    f'from = "statehook@example.com"\nto = ["ops@example.com"]\nca_file = "{ca_file}"\n\n'
                    '[[routes]]\nto = ["mail"]\n')
    result = CliRunner().invoke(app, [*command, "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, OSError), result.exception
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {path}:8: destinations.mail.ca_file: {problem}"], result.output


async def test_a_ca_file_gone_after_the_check_fails_deliveries_not_the_notifier(
    redis: aioredis.Redis, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = EmailSettings.model_validate(mail_block(smtp))
    pem = smtp.ca_file.read_bytes()
    smtp.ca_file.unlink()
    async with aiohttp.ClientSession() as session:
        notifier = EmailNotifier("mail", settings, NotifierContext(session=session))  # raised FileNotFoundError
        assert "destination mail: ca_file: no such file" in caplog.text
        with pytest.raises(TransientFailure, match=r"^ca_file: no such file$"):
            await notifier.send(failed())
        smtp.ca_file.write_bytes(pem)  # put back: the next attempt loads it
        assert (await notifier.send(failed())).status == 250
    assert len(smtp.inbox.mails) == 1 and smtp.inbox.mails[0].tls
