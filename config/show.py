"""The resolved configuration as plain data, every secret masked. For `statehook check`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from config.load import Config

__all__ = ["MASK", "mask_url", "resolved"]

MASK = "********"


def mask_url(url: str) -> str:
    """Scheme and host only: paths and queries of webhook URLs carry tokens."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/{MASK}" if parts.scheme else MASK


def _plain(value: Any, key: str = "") -> Any:
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return mask_url(secret) if key.endswith("url") and "://" in secret else MASK
    if isinstance(value, BaseModel):
        return {k: _plain(getattr(value, k), k) for k in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): _plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, key) for v in value]
    if hasattr(value, "value") and hasattr(value, "name"):  # enums
        return value.value
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def resolved(config: Config) -> dict[str, Any]:
    s = config.settings
    return {
        "config_file": str(config.source) if config.source else None,
        "redis_url": mask_url(s.redis_url.get_secret_value()) if s.redis_url else None,
        "sentry": "on" if s.sentry_dsn else "off",
        "log_format": s.log_format,
        "log_level": s.log_level,
        "worker": _plain(s.worker),
        "api": _plain(s.api),
        "providers": {n: _plain(p) for n, p in config.providers.items()},
        "watches": [_plain(w) for w in config.watches],
        "destinations": {n: _plain(d) for n, d in config.destinations.items()},
        "routes": [_plain(r) for r in config.routes],
    }
