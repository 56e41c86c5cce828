"""Load, validate and cross-check the whole configuration, collecting every problem.

A bad config stops start-up with one line per problem that names the field, and the
file and line where it can be found. Values are never echoed: they may be secrets.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

import notifiers
import notifiers.templates
import providers
from config.schema import Route, WatchSpec
from config.settings import Settings, settings_class_for
from notifiers.base import DestinationSettings
from providers.base import ProviderSettings

__all__ = ["Config", "ConfigError", "canonical_name", "load_config"]


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(slots=True)
class Config:
    settings: Settings = field(repr=False)  # holds the raw provider and destination blocks
    providers: dict[str, ProviderSettings]
    destinations: dict[str, DestinationSettings]
    watches: list[WatchSpec]
    routes: list[Route]
    source: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def redis_url(self) -> str:
        return self.settings.redis_url.get_secret_value()


def canonical_name(name: str) -> str:
    """Destination names compare without case and with `_` = `-`, so that the environment
    (`STATEHOOK_DESTINATIONS__OPS_SLACK__WEBHOOK_URL`) reaches `[destinations.ops-slack]`."""
    return name.strip().lower().replace("_", "-")


def _merge_aliases(blocks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    # names with a hyphen come from the file and are the display names; env keys fold into them
    for name in sorted(blocks, key=lambda n: "_" in n):
        key = canonical_name(name)
        target = merged.setdefault(key, {})
        for k, v in (blocks[name] or {}).items():
            target.setdefault(k, v)
    return merged


def load_config(path: Path | str | None = None, **overrides: Any) -> Config:
    """The resolved configuration. `path` defaults to `$STATEHOOK_CONFIG_FILE`, then
    `./statehook.toml` if it exists. Raises ConfigError listing every problem."""
    toml_path = _config_path(path)
    text = ""
    if toml_path is not None:
        try:
            text = toml_path.read_text()
            tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError([f"{toml_path}: no such file"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{toml_path}: not valid TOML: {exc}"]) from None
    locator = _Locator(toml_path, text)
    try:
        settings = settings_class_for(toml_path)(**overrides)
    except ValidationError as exc:
        raise ConfigError(locator.problems(exc)) from None

    problems: list[str] = []
    provider_settings: dict[str, ProviderSettings] = {}
    for name, block in _merge_aliases(settings.providers).items():
        cls = providers.REGISTRY.get(name)
        if cls is None:
            problems.append(
                locator.line(("providers", name), f"unknown provider (known: {', '.join(providers.REGISTRY)})")
            )
            continue
        parsed = _validate(cls.settings_model, block, ("providers", name), locator, problems)
        if parsed is not None:
            provider_settings[name] = parsed

    destinations: dict[str, DestinationSettings] = {}
    for name, block in _merge_aliases(settings.destinations).items():
        kind = block.get("kind")
        cls_n = notifiers.REGISTRY.get(str(kind)) if kind else None
        if cls_n is None:
            what = f"unknown kind {kind!r}" if kind else "missing `kind`"
            problems.append(
                locator.line(("destinations", name, "kind"), f"{what} (known: {', '.join(notifiers.REGISTRY)})")
            )
            continue
        parsed_d = _validate(cls_n.settings_model, block, ("destinations", name), locator, problems)
        if parsed_d is not None:
            destinations[name] = parsed_d

    for i, watch in enumerate(settings.watches):
        cls_p = providers.REGISTRY.get(watch.provider)
        if cls_p is None:
            problems.append(locator.line(("watches", i, "provider"), f"unknown provider {watch.provider!r}"))
        elif watch.provider not in provider_settings and watch.provider not in _merge_aliases(settings.providers):
            problems.append(
                locator.line(
                    ("watches", i, "provider"),
                    f"provider {watch.provider!r} has no [providers.{watch.provider}] settings",
                )
            )
        elif watch.kind is not None and watch.kind not in cls_p.kinds:
            problems.append(
                locator.line(
                    ("watches", i, "kind"),
                    f"{watch.provider} has no kind {watch.kind!r} (known: {', '.join(cls_p.kinds)})",
                )
            )

    routes = []
    for i, route in enumerate(settings.routes):
        targets = []
        for j, target in enumerate(route.to):
            if canonical_name(target) not in destinations and canonical_name(target) not in _merge_aliases(
                settings.destinations
            ):
                problems.append(locator.line(("routes", i, "to", j), f"unknown destination {target!r}"))
            targets.append(canonical_name(target))
        if route.match.provider:
            for p in route.match.provider:
                if p not in providers.REGISTRY:
                    problems.append(locator.line(("routes", i, "match", "provider"), f"unknown provider {p!r}"))
        routes.append(route.model_copy(update={"to": targets}))

    if not problems:
        for loc, msg in notifiers.templates.template_problems(destinations, routes):
            problems.append(locator.line(loc, msg))
    if problems:
        raise ConfigError(problems)
    return Config(settings, provider_settings, destinations, settings.watches, routes, toml_path)


def _config_path(path: Path | str | None) -> Path | None:
    if path is not None:
        return Path(path)
    env = os.environ.get("STATEHOOK_CONFIG_FILE")
    if env:
        return Path(env)
    default = Path("statehook.toml")
    return default if default.exists() else None


def _validate(
    model: type[BaseModel], block: dict[str, Any], prefix: tuple[str | int, ...], locator: _Locator, problems: list[str]
) -> Any:
    try:
        return model.model_validate(block)
    except ValidationError as exc:
        problems.extend(locator.problems(exc, prefix=prefix, model=model))
        return None


class _Locator:
    """Finds the file line of a dotted field, as well as a TOML file without positions allows."""

    def __init__(self, path: Path | None, text: str) -> None:
        self.path = path
        self.keys: dict[tuple[str | int, ...], int] = {}
        self._index(text)

    def _index(self, text: str) -> None:
        table: tuple[str | int, ...] = ()
        arrays: dict[tuple[str | int, ...], int] = {}
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if line.startswith("[["):
                name = tuple(_split_key(line.strip("[] ")))
                arrays[name] = arrays.get(name, -1) + 1
                table = (*name, arrays[name])
                self.keys.setdefault(table, lineno)
            elif line.startswith("["):
                table = tuple(_split_key(line.strip("[] ")))
                self.keys.setdefault(table, lineno)
            elif "=" in line and not line.startswith("#"):
                key = tuple(_split_key(line.split("=", 1)[0].strip()))
                self.keys.setdefault((*table, *key), lineno)

    def where(self, loc: Iterable[str | int]) -> str:
        if self.path is None:
            return ""
        loc = tuple(loc)
        while loc:
            normalized = tuple(canonical_name(x) if isinstance(x, str) else x for x in loc)
            for key, lineno in self.keys.items():
                if tuple(canonical_name(x) if isinstance(x, str) else x for x in key) == normalized:
                    return f"{self.path}:{lineno}: "
            loc = loc[:-1]
        return f"{self.path}: "

    def line(self, loc: tuple[str | int, ...], message: str) -> str:
        return f"{self.where(loc)}{_dotted(loc)}: {message}"

    def problems(
        self, exc: ValidationError, *, prefix: tuple[str | int, ...] = (), model: type[BaseModel] | None = None
    ) -> list[str]:
        out = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = (*prefix, *err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                field_name = str(err["loc"][-1]) if err["loc"] else ""
                secret = model is not None and _is_secret(model, field_name)
                env = "STATEHOOK_" + "__".join(str(x).upper().replace("-", "_") for x in loc)
                message = f"missing{' secret' if secret else ''}: set it in the file or as {env}"
            elif err["type"] == "extra_forbidden":
                message = "unknown field"
            out.append(self.line(loc, message))
        return out


def _is_secret(model: type[BaseModel], name: str) -> bool:
    info = model.model_fields.get(name)
    return (
        info is not None
        and info.annotation is not None
        and SecretStr in (getattr(info.annotation, "__args__", ()) or (info.annotation,))
    )


def _split_key(key: str) -> list[str]:
    return [part.strip().strip('"').strip("'") for part in re.split(r"\.(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", key)]


def _dotted(loc: Iterable[str | int]) -> str:
    return ".".join(str(x) for x in loc)
