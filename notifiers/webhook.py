"""Webhook: POST of the event JSON, signed per Standard Webhooks.

`webhook-id` is the event id, so a receiver drops duplicates of at-least-once delivery.
Several secrets (rotation) give several space-separated signatures. The exact bytes sent
are the bytes signed.
"""

from __future__ import annotations

import base64
import binascii
import time
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from standardwebhooks.webhooks import Webhook

from model.events import Event
from model.outcomes import Delivered, PermanentFailure, TransientFailure
from model.values import Duration
from notifiers.base import DestinationSettings, Notifier
from transport.http import NoReply, Outcome, send

__all__ = ["MAX_ANSWER", "RESERVED_HEADERS", "WebhookNotifier", "WebhookSettings", "sign", "whsec_problem"]

MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
"""The key length the Standard Webhooks specification asks for."""
RESERVED_HEADERS = frozenset({"content-type", "webhook-id", "webhook-timestamp", "webhook-signature"})
MAX_ANSWER = 64 * 1024
"""Bytes of a receiver's answer read: it only ever gives a failure's reason."""


class WebhookSettings(DestinationSettings):
    kind: Literal["webhook"] = "webhook"
    url: SecretStr
    secret: SecretStr = Field(description="whsec_… ; several, space-separated, while rotating")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = 15.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if not url.startswith(("http://", "https://")) or len(url.split("/", 3)[2]) == 0:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("headers")
    @classmethod
    def _not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by statehook")
        return value

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr) -> SecretStr:
        parts = value.get_secret_value().split()
        if not parts:
            raise ValueError("must not be empty")
        for i, part in enumerate(parts, 1):
            problem = whsec_problem(part)
            if problem:
                which = f"secret {i} of {len(parts)}" if len(parts) > 1 else "the secret"
                raise ValueError(f"{which} {problem}")
        return value


def whsec_problem(secret: str) -> str | None:
    """Why `secret` is not a Standard Webhooks signing secret (`whsec_` and the base64 of 24 to
    64 bytes), or None. Strict: standardwebhooks' own decoder drops characters outside the
    alphabet, which would sign with a key other than the one the receiver holds."""
    if not secret.startswith("whsec_"):
        return "must start with `whsec_`"
    body = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return "is not `whsec_` followed by base64"
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        return f"must decode to {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes (it has {len(key)})"
    return None


def sign(secrets: list[str], msg_id: str, timestamp: datetime, body: bytes) -> str:
    """The `webhook-signature` header: one `v1,…` per secret, space-separated."""
    payload = body.decode()
    return " ".join(Webhook(s).sign(msg_id, timestamp, payload) for s in secrets)


class WebhookNotifier(Notifier):
    kind = "webhook"
    settings_model = WebhookSettings
    settings: WebhookSettings

    async def send(self, event: Event) -> Delivered:
        body = event.to_json()
        now = datetime.fromtimestamp(int(time.time()), tz=UTC)
        custom = self.settings.headers
        headers = {
            **({} if any(k.lower() == "user-agent" for k in custom) else {"user-agent": "statehook"}),
            **custom,
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": sign(self.settings.secret.get_secret_value().split(), event.id, now, body),
        }
        try:
            reply = await send(self.ctx.session, "POST", self.settings.url.get_secret_value(), data=body,
                               headers=headers, timeout=self.settings.timeout, max_body=MAX_ANSWER,
                               allow_redirects=False)
        except NoReply as exc:
            raise TransientFailure(exc.reason) from exc
        status, text = reply.status, reply.text()
        if reply.outcome is Outcome.OK:
            return Delivered(status=status)
        reason = f"HTTP {status}" + (f": {text}" if text else "")
        if reply.outcome in (Outcome.RETRY, Outcome.RATE_LIMITED):
            after = reply.retry_after(0.0) if reply.retry_after_header else None
            raise TransientFailure(reason, status=status, retry_after=after)
        raise PermanentFailure(reason, status=status, disable=reply.outcome is Outcome.GONE)
