"""Removing secrets from text that leaves the process: log lines and Sentry events.

Two layers, because neither is enough alone:

- *shapes*: what a credential looks like wherever it comes from (`Bearer …`, `Token …`,
  `Rev …:…`, `whsec_…`, Slack hook URLs, a URL's password, `password=…`, `?token=…`).
  These catch tokens statehook obtains at run time (OAuth access tokens) and echoes of
  credentials in provider error bodies.
- *values*: the actual secrets of the loaded configuration (every `SecretStr`: provider
  keys, webhook URLs and signing secrets, the API and hook tokens, the Redis password),
  replaced wherever they appear, whatever surrounds them.

One active `Redactor` per process (`configure` at start-up); the logging filter and
Sentry's `before_send` both use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, SecretStr

__all__ = [
    "MASK",
    "Redactor",
    "active",
    "configure",
    "is_sensitive_key",
    "redact",
    "secret_values",
]

MASK = "********"
_AUTH_SCHEMES = frozenset({"basic", "bearer", "digest", "rev", "token"})
"""Words of an `Authorization` value that are not secret (replacing them would shred every
log line that mentions them)."""
MIN_SECRET_LENGTH = 4
"""Config secrets shorter than this are not replaced literally (they would shred text);
the shapes above still catch them in their usual places."""

_SENSITIVE_KEY_PARTS = (
    "authorization", "cookie", "password", "passwd", "secret", "token", "api_key", "apikey",
    "client_key", "user_key", "dsn", "signature", "webhook_url", "credential", "private_key",
)

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Slack incoming webhooks: the path is the credential
    (re.compile(r"https://hooks\.slack(?:-gov)?\.com/[^\s\"'<>)\]]+"), "https://hooks.slack.com/" + MASK),
    # a password inside a URL: redis://:pw@host, https://user:pw@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s\"']*):[^@/\s\"']+@"), r"\1:" + MASK + "@"),
    # credentials in a query string, presigned URL signatures
    (re.compile(r"(?i)([?&](?:token|access_token|api[_-]?key|key|secret|client_secret|signature|sig|password"
                r"|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&#\s\"']+"), r"\1" + MASK),
    (re.compile(r"whsec_[A-Za-z0-9+/=_\-]+"), "whsec_" + MASK),
    (re.compile(r"(?i)\b(Bearer)\s+[A-Za-z0-9._~+/=\-]+"), r"\1 " + MASK),
    (re.compile(r"\b(Token)\s+[A-Za-z0-9._~+/=\-]{12,}"), r"\1 " + MASK),
    (re.compile(r"\b(Rev)\s+[^\s:\"']+:[^\s\"',;]+"), r"\1 " + MASK),
    # key = value, key: value, "key": "value", 'key': 'value'
    (re.compile(r"(?i)\b(password|passwd|pwd|secret|client_secret|api_key|apikey|access_token|refresh_token"
                r"|user_key|client_key|token)(['\"]?\s*[:=]\s*['\"]?)(?!\*{8})[^\s\"',;&}\])]{2,}"),
     r"\1\2" + MASK),
)


def is_sensitive_key(key: str) -> bool:
    """Whether a mapping key names a credential (its value is masked whole)."""
    lowered = key.lower().replace("-", "_")
    return any(part in lowered for part in _SENSITIVE_KEY_PARTS)


class Redactor:
    """Replaces credential shapes and known secret values in text and in nested data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self.secrets = tuple(values)
        self._literal = re.compile("|".join(re.escape(s) for s in values)) if values else None

    def text(self, value: str) -> str:
        if self._literal is not None:
            value = self._literal.sub(MASK, value)
        for pattern, replacement in _SHAPES:
            value = pattern.sub(replacement, value)
        return value

    def value(self, data: Any, *, _depth: int = 0) -> Any:
        """A copy of `data` (dicts, lists, strings, anything else left alone) with every
        string redacted and the values of credential-named keys masked whole."""
        if _depth > 30:
            return data
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, Mapping):
            out = {}
            for k, v in data.items():
                if isinstance(k, str) and is_sensitive_key(k) and v not in (None, "", [], {}):
                    out[k] = MASK if isinstance(v, str | bytes | int | float) else self.value(v, _depth=_depth + 1)
                else:
                    out[k] = self.value(v, _depth=_depth + 1)
            return out
        if isinstance(data, list | tuple):
            items = [self.value(v, _depth=_depth + 1) for v in data]
            return items if isinstance(data, list) else tuple(items)
        if isinstance(data, bytes):
            return self.text(data.decode("utf-8", "replace"))
        return data


def _secret_parts(field: str, secret: str) -> list[str]:
    """The strings of one secret worth replacing: a URL's password (and for a Redis URL or
    a Sentry DSN, nothing else: the rest is an address), every word of a rotation list or
    of a header's value but its scheme (`Bearer`)."""
    parts: list[str] = []
    if "://" in secret:
        try:
            url = urlsplit(secret)
        except ValueError:  # an unbalanced [ in the host: the whole string, then
            return [secret]
        if url.password:
            parts.append(url.password)
        if field in ("redis_url", "sentry_dsn"):
            if field == "sentry_dsn" and url.username:
                parts.append(url.username)
            return parts
        parts.append(secret)
        # its credentials may travel alone (a log call's arguments): query values, long path segments
        parts.extend(v for _, v in parse_qsl(url.query) if len(v) >= 8)
        parts.extend(seg for seg in url.path.split("/") if len(seg) >= 16)
        return parts
    parts.extend(w for w in secret.split() if w.lower() not in _AUTH_SCHEMES)
    if " " in secret.strip():
        parts.append(secret.strip())
    return parts


def _url_password(value: str) -> list[str]:
    """The password of a URL that is not itself a secret (`base_url = "https://user:pw@…"`)."""
    try:
        password = urlsplit(value).password
    except ValueError:
        return []
    return [password] if password else []


def _walk(value: Any, field: str, out: list[str]) -> None:
    if isinstance(value, SecretStr):
        out.extend(_secret_parts(field, value.get_secret_value()))
    elif isinstance(value, str) and "://" in value:
        out.extend(_url_password(value))
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _walk(getattr(value, name), name, out)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _walk(v, str(k), out)
            # every header's value: `Authorization`, and `X-Api-Key` or any name a receiver chose
            if isinstance(v, str) and (field == "headers" or is_sensitive_key(str(k))):
                out.extend(_secret_parts(str(k), v))
    elif isinstance(value, list | tuple):
        for v in value:
            _walk(v, field, out)


def secret_values(config: Any) -> list[str]:
    """Every secret a loaded `config.Config` holds: its settings (Redis, Sentry, API and
    hook tokens, raw provider and destination blocks) and the validated provider and
    destination settings."""
    out: list[str] = []
    _walk(config.settings, "", out)
    for settings in (*config.providers.values(), *config.destinations.values()):
        _walk(settings, "", out)
    return sorted(set(out))


_active = Redactor()


def configure(secrets: Iterable[str]) -> Redactor:
    """Make a Redactor with these secret values the process's active one."""
    global _active
    _active = Redactor(secrets)
    return _active


def active() -> Redactor:
    return _active


def redact(text: str) -> str:
    return _active.text(text)
