"""A local SMTP stand-in: aiosmtpd on loopback, plain (no TLS, no login), in the caller's loop.

aiosmtpd is a test dependency, not a runtime one: `MailStandIn.start` raises
`MailUnavailable` when it is not installed, so that a caller can go on without mail.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

__all__ = ["MailStandIn", "MailUnavailable", "ReceivedMail"]


class MailUnavailable(RuntimeError):
    """aiosmtpd is not installed."""


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))


@dataclass
class MailStandIn:
    on_mail: Callable[[ReceivedMail], None] | None = None
    received: list[ReceivedMail] = field(default_factory=list)
    host: str = ""
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listens on `host:port` (0: a free port); returns the port. OSError if it is taken."""
        try:
            from aiosmtpd.smtp import SMTP
        except ImportError:
            raise MailUnavailable("aiosmtpd is not installed (pip install aiosmtpd)") from None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self, hostname="statehook-sim"), host, port)
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content or b""
        message = email.message_from_bytes(raw if isinstance(raw, bytes) else raw.encode(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        mail = ReceivedMail(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], message)
        self.received.append(mail)
        if self.on_mail is not None:
            self.on_mail(mail)
        return "250 2.0.0 accepted"
