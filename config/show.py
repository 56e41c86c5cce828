"""The resolved configuration as plain data, every secret masked. For `statehook check`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr

from config.load import Config

__all__ = ["MASK", "mask_credentials", "mask_redis_url", "mask_url", "resolved"]

MASK = "********"


def _split_url(url: str, *, last_at: bool = False) -> tuple[str, str, str, str] | None:
    """(scheme, credentials, hosts, rest) without parsing ports: a Sentinel URL names several
    hosts (`s1:26379,s2:26379`), which urllib cannot read. None if `url` has no scheme.
    Credentials end at the last '@' before the query (`last_at`: the last '@' of all), as
    a password may hold '/', '@' (or '?') unescaped."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        return None
    query = -1 if last_at else rest.find("?")
    at = rest.rfind("@", 0, query if query >= 0 else len(rest))
    credentials, after = (rest[:at], rest[at + 1:]) if at >= 0 else ("", rest)
    cut = min((i for i in (after.find(c) for c in "/?#") if i >= 0), default=len(after))
    return scheme, credentials, after[:cut], after[cut:]


def mask_url(url: str) -> str:
    """Scheme and host only: paths and queries of webhook URLs carry tokens."""
    parts = _split_url(url)
    if parts is None:
        return MASK
    scheme, _, hosts, _ = parts
    return f"{scheme}://{hosts}/{MASK}"


def mask_credentials(url: str) -> str:
    """A URL with its password masked and the rest kept (hosts, path), e.g.
    `redis+sentinel://:********@s1:26379,s2:26379/mymaster/0`. A lone credential (`pw@host`)
    and a query (which may carry `password=`) are masked whole."""
    parts = _split_url(url, last_at=True)
    if parts is None:
        return MASK
    scheme, credentials, hosts, tail = parts
    path, _, query = tail.partition("?")
    path = path.split("#", 1)[0]
    auth = ""
    if credentials:
        user, colon, _ = credentials.partition(":")
        auth = f"{user}:{MASK}@" if colon else f"{MASK}@"
    return f"{scheme}://{auth}{hosts}{path}{'?' + MASK if query else ''}"


mask_redis_url = mask_credentials
"""Of a Redis URL, only the password is hidden: hosts, Sentinel service and db stay readable."""


def _shown_text(value: str) -> str:
    """A plain (not secret) setting that is a URL may still carry a password or a token in
    its query (`base_url = "https://user:pw@host/api"`): those are masked."""
    parts = _split_url(value, last_at=True) if "://" in value else None
    if parts is None or not (parts[1] or "?" in parts[3]):
        return value
    return mask_credentials(value)


def _plain(value: Any, key: str = "") -> Any:
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return mask_url(secret) if key.endswith("url") and "://" in secret else MASK
    if isinstance(value, BaseModel):
        return {k: _plain(getattr(value, k), k) for k in type(value).model_fields}
    if isinstance(value, dict) and key == "headers":  # `Authorization = "Bearer …"`: names only
        return {str(k): MASK for k in value}
    if isinstance(value, dict):
        return {str(k): _plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, key) for v in value]
    if hasattr(value, "value") and hasattr(value, "name"):  # enums
        return value.value
    if hasattr(value, "__fspath__"):
        return str(value)
    if isinstance(value, str):
        return _shown_text(value)
    return value


def resolved(config: Config) -> dict[str, Any]:
    s = config.settings
    return {
        "config_file": str(config.source) if config.source else None,
        "redis_url": mask_redis_url(s.redis_url.get_secret_value()) if s.redis_url else None,
        "sentry": "on" if s.sentry_dsn else "off",
        "log_format": s.log_format,
        "log_level": s.log_level,
        "worker": _plain(s.worker),
        "api": _plain(s.api),
        "providers": {n: _plain(p) for n, p in config.providers.items()},
        "watches": [_plain(w) for w in config.watches],
        "destinations": {n: _plain(d) for n, d in config.destinations.items()},
        "routes": [_plain(r) for r in config.routes],
        "time_intervals": [_plain(t) for t in s.time_intervals],
        "watchdog": _plain(s.watchdog),
        "silences": _plain(s.silences),
    }
