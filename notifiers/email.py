"""Email over SMTP (aiosmtplib): one `multipart/alternative` message per event (text first,
HTML last, both from templates), or one per digest window.

Every message of one resource threads: its `Message-ID` is `<{event id}@statehook>`
(stable, so a retried or replayed message is recognisably the same one) and its
`In-Reply-To` and `References` name one root per resource, `<{sha256 of the rkey, 32 hex
digits}@statehook>` (short enough that the header is never folded).

STARTTLS is the default and is required when asked for; implicit TLS (465) or plain (a
local relay) by setting. 4xx replies and connection or TLS failures are retried; 5xx
replies, and what the client itself refuses (a server that offers no AUTH when a login is
configured), are dead-lettered with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Literal

import aiosmtplib
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from model.events import Event
from model.outcomes import Delivered, PermanentFailure, TransientFailure
from model.values import Duration, Templates
from notifiers.base import DestinationSettings, Notifier, NotifierContext
from notifiers.templates import TemplateBook

__all__ = ["EmailNotifier", "EmailSettings", "build_email", "ca_file_problem", "message_id", "thread_root"]

log = logging.getLogger("statehook.email")

MESSAGE_ID_DOMAIN = "statehook"
DEFAULT_PORT = {"starttls": 587, "tls": 465, "plain": 25}


class EmailSettings(DestinationSettings):
    kind: Literal["email"] = "email"
    host: str
    port: int | None = Field(default=None, ge=1, le=65535, description="default: 587 starttls, 465 tls, 25 plain")
    security: Literal["starttls", "tls", "plain"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(validation_alias=AliasChoices("from", "sender"), description="the From address")
    to: list[str] = Field(min_length=1)
    cc: list[str] = Field(default_factory=list)
    reply_to: str | None = None
    subject: str | None = Field(default=None, description="subject template (same as templates.subject)")
    tls_verify: bool = Field(default=True, description="verify the server's certificate and name")
    ca_file: Path | None = Field(default=None, description="CA bundle to verify the server with (a private CA)")
    timeout: Duration = 20.0
    local_hostname: str | None = None
    templates: Templates = Field(default_factory=dict)

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address:
                raise ValueError(f"not an email address: {address!r}")
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        problem = ca_file_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("`username` and `password` go together")
        if self.subject is not None and "subject" not in self.templates:
            self.templates = {**self.templates, "subject": self.subject}
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORT[self.security]


def thread_root(rkey: str) -> str:
    """The Message-ID every message of a resource refers to, so that they thread."""
    return f"<{hashlib.sha256(rkey.encode()).hexdigest()[:32]}@{MESSAGE_ID_DOMAIN}>"


def message_id(event: Event) -> str:
    return f"<{event.id}@{MESSAGE_ID_DOMAIN}>"


def build_email(event: Event, settings: EmailSettings, templates: TemplateBook) -> EmailMessage:
    """The message for an event (or a digest event). Pure but for the Date header."""
    msg = EmailMessage()
    msg["Subject"] = templates.render("subject", event)
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.to)
    if settings.cc:
        msg["Cc"] = ", ".join(settings.cc)
    if settings.reply_to:
        msg["Reply-To"] = settings.reply_to
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(event)
    root = thread_root(event.rkey)
    msg["In-Reply-To"] = root
    msg["References"] = root
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Statehook-Event"] = event.id
    msg["X-Statehook-Type"] = event.type
    msg["X-Statehook-Severity"] = event.severity.value
    msg.set_content(templates.render("text", event))
    msg.add_alternative(templates.render("html", event), subtype="html")
    return msg


def ca_file_problem(path: Path) -> str | None:
    """Why TLS cannot load `path` as a CA bundle, in a few words (nothing of its content)."""
    try:
        ssl.create_default_context(cafile=str(path))
    except FileNotFoundError:
        return "no such file"
    except IsADirectoryError:
        return "a directory, not a CA bundle"
    except PermissionError:
        return "cannot read it (permission denied)"
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        return "not a CA bundle TLS can load (PEM certificates)"
    return None


def _tls_context(settings: EmailSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if not settings.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _smtp_failure(code: int, message: str) -> TransientFailure | PermanentFailure:
    reason = f"SMTP {code}: {' '.join(message.split())[:200]}"
    return TransientFailure(reason, status=code) if 400 <= code < 500 else PermanentFailure(reason, status=code)


class EmailNotifier(Notifier):
    kind = "email"
    settings_model = EmailSettings
    settings: EmailSettings

    def __init__(self, name: str, settings: DestinationSettings, ctx: NotifierContext) -> None:
        super().__init__(name, settings, ctx)
        self.templates = TemplateBook(name, self.settings.templates)
        self._tls: ssl.SSLContext | None = None
        if self.settings.security != "plain" and (problem := self._load_tls()) is not None:
            # checked with the config; gone or changed since: an error line, not a crash of the worker
            log.error("destination %s: ca_file: %s (its deliveries fail until it is fixed)", name, problem)

    def _load_tls(self) -> str | None:
        """Builds the TLS context; what is wrong with the CA file if it cannot."""
        try:
            self._tls = _tls_context(self.settings)
        except (OSError, ValueError):
            return (ca_file_problem(self.settings.ca_file) if self.settings.ca_file else None) or "cannot load it"
        return None

    async def send(self, event: Event) -> Delivered:
        s = self.settings
        if s.security != "plain" and self._tls is None and (problem := self._load_tls()) is not None:
            raise TransientFailure(f"ca_file: {problem}")
        message = build_email(event, s, self.templates)
        try:
            refused, reply = await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.effective_port,
                username=s.username,
                password=s.password.get_secret_value() if s.password else None,
                use_tls=s.security == "tls",
                start_tls=s.security == "starttls",
                tls_context=self._tls,
                timeout=s.timeout,
                local_hostname=s.local_hostname,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:  # every recipient refused
            codes = [r.code for r in exc.recipients]
            worst = min(codes) if any(400 <= c < 500 for c in codes) else max(codes, default=550)
            first = exc.recipients[0] if exc.recipients else None
            raise _smtp_failure(worst, first.message if first else "recipients refused") from exc
        except aiosmtplib.SMTPNotSupported as exc:
            raise PermanentFailure(f"server does not support it: {exc.message[:200]}") from exc
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected) as exc:
            raise TransientFailure(f"connection failed: {type(exc).__name__}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _smtp_failure(exc.code, exc.message) from exc
        except (ssl.SSLError, OSError) as exc:
            raise TransientFailure(f"connection failed: {type(exc).__name__}") from exc
        except aiosmtplib.SMTPException as exc:  # the client's own verdict (e.g. no AUTH offered): a config problem
            raise PermanentFailure(f"SMTP: {' '.join(exc.message.split())[:200]}") from exc
        if refused:
            log.warning("message %s: %d recipient(s) refused: %s", event.id, len(refused),
                        ", ".join(f"{r.code}" for r in refused.values()))
        return Delivered(status=250, detail=reply[:100])
