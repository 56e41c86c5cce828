"""Secrets written in a config file that others can read: a warning for each, naming its line
and the variable that would set it instead, never its value. A file of mode 600 (or 400) is
the operator's choice and is not warned about; nor is a secret that only the environment sets."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from config.origin import Locator, dotted, variable_for
from config.settings import Settings
from store.redis_url import SENTINEL_SCHEMES, parse_sentinel_url

__all__ = ["secrets_in_file"]

Loc = tuple[str | int, ...]


def secrets_in_file(path: Path | None, locator: Locator, settings: Settings, providers: dict[str, BaseModel],
                    destinations: dict[str, BaseModel]) -> list[str]:
    mode = _mode(path)
    if path is None or not mode & (stat.S_IRGRP | stat.S_IROTH):
        return []
    warnings = []
    for loc in _secret_locations(settings, providers, destinations):
        line = locator.file_line(loc)
        if line is not None:
            warnings.append(f"{path}:{line}: {dotted(loc)}: a secret in a file others can read (mode {mode:o}): "
                            f"set it as {variable_for(loc)} instead, or make the file private (chmod 600)")
    return warnings


def _mode(path: Path | None) -> int:
    """The file's permission bits (0 when there is none, or it cannot be looked at)."""
    try:
        return stat.S_IMODE(path.stat().st_mode) if path is not None else 0
    except OSError:
        return 0


def _secret_locations(settings: Settings, providers: dict[str, BaseModel],
                      destinations: dict[str, BaseModel]) -> Iterator[Loc]:
    if _has_password(settings.redis_url.get_secret_value()):
        yield ("redis_url",)
    if settings.sentry_dsn is not None:
        yield ("sentry_dsn",)
    yield from _secret_fields(settings.api, ("api",))
    for name, model in providers.items():
        yield from _secret_fields(model, ("providers", name))
    for name, model in destinations.items():
        yield from _secret_fields(model, ("destinations", name))


def _has_password(url: str) -> bool:
    try:
        if url.startswith(SENTINEL_SCHEMES):
            return parse_sentinel_url(url).password is not None
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def _secret_fields(model: BaseModel, prefix: Loc) -> Iterator[Loc]:
    """Each field of `model` that holds a secret: a SecretStr, or a table of them (an inline
    table's line is the table's own), or a destination's headers."""
    for name in type(model).model_fields:
        value: Any = getattr(model, name)
        loc = (*prefix, name)
        if isinstance(value, SecretStr):
            yield loc
        elif isinstance(value, dict) and value and (
                name == "headers" or all(isinstance(v, SecretStr) for v in value.values())):
            yield loc
