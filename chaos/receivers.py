"""The three receivers, each turning what it accepted into `chaos.score.Delivery`s:

- a webhook endpoint that verifies every Standard Webhooks signature (a request that does
  not verify is answered 400 and counted, never a delivery) and can hold its answers for a
  while, so that a worker is caught with deliveries in flight;
- Slack: `simulator.slack.SlackStandIn` (about one message per second per webhook, 429
  with Retry-After beyond);
- SMTP: aiosmtpd on loopback, plain.

A receipt counts when the receiver answered 2xx to a sender still connected.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import orjson
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chaos.score import Delivery
from simulator.redisctl import free_port
from simulator.slack import SlackStandIn

__all__ = ["MailSink", "WebhookSink", "parse_iso", "slack_deliveries"]


def parse_iso(value: Any) -> float:
    """Seconds since the epoch of statehook's `detected_at` (`2026-11-23T10:15:02Z`); 0 if unreadable."""
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def _canonical(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


@dataclass
class WebhookSink:
    secret: str
    deliveries: list[Delivery] = field(default_factory=list)
    bad_signatures: int = 0
    id_mismatches: int = 0
    """requests whose webhook-id header is not the body's event id"""
    abandoned: int = 0
    """requests whose sender hung up before the answer (not deliveries)"""
    hold_s: float = 0.0
    in_flight: dict[int, float] = field(default_factory=dict)
    """client port -> since when its request waits for an answer"""
    base_url: str = ""
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            self.bad_signatures += 1
            return web.Response(status=400, text="bad signature")
        peer = request.transport.get_extra_info("peername") if request.transport else None
        port = int(peer[1]) if peer else 0
        if self.hold_s > 0:
            self.in_flight[port] = time.monotonic()
            try:
                await asyncio.sleep(self.hold_s)
            finally:
                self.in_flight.pop(port, None)
        if request.transport is None or request.transport.is_closing():
            self.abandoned += 1
            return web.Response(status=204)
        event = orjson.loads(body)
        if headers.get("webhook-id") != event.get("id"):
            self.id_mismatches += 1
        self.deliveries.append(Delivery(
            receiver="webhook", event_id=str(headers.get("webhook-id", "")), event_type=str(event.get("type", "")),
            rkey=str((event.get("resource") or {}).get("key", "")), to_state=_to(event),
            detected_at=parse_iso(event.get("detected_at")), received_at=time.time(), body=_canonical(event),
        ))
        return web.Response(status=204)


def _to(event: dict[str, Any]) -> str | None:
    to = (event.get("data") or {}).get("to")
    return None if to is None else str(to)


def _from_mark(mark: str) -> tuple[str, str, str | None, float, str] | None:
    """(event id, rkey, to, detected_at, type) of a `chaos|…` line (chaos/stack.py MARK)."""
    parts = mark.strip().split("|")
    if len(parts) != 6 or parts[0] != "chaos":
        return None
    _, event_id, rkey, to, detected, event_type = parts
    return event_id, rkey, to or None, parse_iso(detected), event_type


def slack_deliveries(slack: SlackStandIn) -> list[Delivery]:
    """Every message the stand-in accepted, as deliveries (its first section is the mark)."""
    out = []
    for m in slack.messages:
        blocks = m.payload.get("blocks") or []
        text = str(((blocks[0] if blocks else {}).get("text") or {}).get("text", ""))
        parsed = _from_mark(text)
        if parsed is None:
            out.append(Delivery("slack", "?", "?", "?", None, 0.0, m.at, _canonical(m.payload)))
            continue
        event_id, rkey, to, detected, event_type = parsed
        out.append(Delivery("slack", event_id, event_type, rkey, to, detected, m.at, _canonical(m.payload)))
    return out


@dataclass
class _Inbox:
    received: list[tuple[float, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        self.received.append((time.time(), content if isinstance(content, bytes) else content.encode()))
        return "250 2.0.0 accepted"


@dataclass
class MailSink:
    """aiosmtpd on a free loopback port (its own thread)."""

    port: int = field(default_factory=free_port)
    inbox: _Inbox = field(default_factory=_Inbox)
    _controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def deliveries(self) -> list[Delivery]:
        out = []
        for at, raw in list(self.inbox.received):
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            parsed = _from_mark(str(msg.get("Subject", "")))
            event_id = str(msg.get("X-Statehook-Event", "?"))
            # the mail as sent but its Date and its MIME boundary (drawn anew each time a message
            # is written out, so a retry of the same event differs there): every other header, every part
            heads = sorted((k, str(v)) for k, v in msg.items() if k.lower() not in ("date", "content-type"))
            heads.append(("Content-Type", msg.get_content_type()))
            parts = [(p.get_content_type(), str(p.get_content())) for p in msg.iter_parts()]
            body = _canonical({"headers": heads, "parts": parts})
            if parsed is None:
                out.append(Delivery("email", event_id, "?", "?", None, 0.0, at, body))
                continue
            _, rkey, to, detected, event_type = parsed
            out.append(Delivery("email", event_id, event_type, rkey, to, detected, at, body))
        return out
