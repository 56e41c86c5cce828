"""Load, validate and cross-check the whole configuration, collecting every problem.

A bad config stops start-up with one line per problem that names the field, and where it
was set: the file and line, or the environment variable. Values are never echoed: they
may be secrets.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

import notifiers
import notifiers.templates
import providers
from config.file_secrets import secrets_in_file
from config.origin import OTHER_VARIABLES, Locator, canonical_name, unknown_variables
from config.schema import WatchSpec
from config.settings import (
    ENV_FILE,
    Settings,
    environment_variables,
    settings_class_for,
)
from model.routes import Route
from model.values import format_seconds
from notifiers.base import DestinationSettings
from providers.base import ProviderSettings, scan_filter_problems

__all__ = ["OTHER_VARIABLES", "Config", "ConfigError", "canonical_name", "load_config"]

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
    warnings: list[str] = field(default_factory=list)
    """what is not wrong enough to stop: `STATEHOOK_…` variables that name no setting, secrets
    in a file others can read (config/file_secrets.py)"""

    @property
    def redis_url(self) -> str:
        return self.settings.redis_url.get_secret_value()


def load_config(path: Path | str | None = None, **overrides: Any) -> Config:
    """The resolved configuration. `path` defaults to `$STATEHOOK_CONFIG_FILE`, then
    `./statehook.toml` if it exists. Raises ConfigError listing every problem."""
    toml_path, named_by = _config_path(path)
    text, data = _read_file(toml_path, named_by) if toml_path is not None else ("", {})
    env = environment_variables()
    locator = Locator(toml_path, text, env)
    settings, problems, at_fault = _settings(toml_path, locator, overrides)

    provider_blocks = _blocks("providers", settings.providers, data.get("providers"), locator, problems)
    provider_settings: dict[str, ProviderSettings] = {}
    for name, block in provider_blocks.items():
        if name in provider_blocks.ambiguous:
            continue
        cls = providers.REGISTRY.get(name)
        if cls is None:
            problems.append(
                locator.line(("providers", name), f"unknown provider (known: {', '.join(providers.REGISTRY)})")
            )
            continue
        parsed = _validate(cls.settings_model, block, ("providers", name), locator, problems)
        if parsed is not None:
            provider_settings[name] = parsed

    destination_blocks = _blocks("destinations", settings.destinations, data.get("destinations"), locator, problems)
    destinations = _destinations(destination_blocks, settings, toml_path, locator, problems,
                                 check_timeouts="worker" not in at_fault)

    # what depends on a field at fault (at its default here) is checked once it is fixed: no made-up problems
    if not at_fault & {"providers", "watches"}:
        problems.extend(_watch_problems(settings, provider_blocks, locator))
    routes = [] if at_fault & {"routes", "destinations", "time_intervals"} else _routes(
        settings, destination_blocks, locator, problems)

    if not problems:
        for loc, msg in notifiers.templates.template_problems(destinations, routes):
            problems.append(locator.line(loc, msg))
    if problems:
        raise ConfigError(problems)
    warnings = unknown_variables(env, destination_blocks)
    warnings += secrets_in_file(toml_path, locator, settings, dict(provider_settings), dict(destinations))
    return Config(settings, provider_settings, destinations, settings.watches, routes, toml_path, warnings=warnings)


def _destinations(destination_blocks: _Blocks, settings: Settings, toml_path: Path | None, locator: Locator,
                  problems: list[str], *, check_timeouts: bool) -> dict[str, DestinationSettings]:
    """Each destination validated by its kind's settings (and its send limit against the
    delivery job's, unless [worker] itself is at fault)."""
    destinations: dict[str, DestinationSettings] = {}
    for name, block in destination_blocks.items():
        if name in destination_blocks.ambiguous:
            continue
        kind = block.get("kind")
        cls_n = notifiers.REGISTRY.get(str(kind)) if kind else None
        if cls_n is None and not kind and name not in destination_blocks.in_file:
            problems.append(locator.line(("destinations", name), _no_table(toml_path, name)))
            continue
        if cls_n is None:
            what = f"unknown kind {kind!r}" if kind else "missing `kind`"
            problems.append(
                locator.line(("destinations", name, "kind"), f"{what} (known: {', '.join(notifiers.REGISTRY)})")
            )
            continue
        parsed_d = _validate(cls_n.settings_model, block, ("destinations", name), locator, problems)
        if parsed_d is not None:
            destinations[name] = parsed_d
            problem = _outlasts_the_job(parsed_d, settings.worker.delivery_timeout) if check_timeouts else None
            if problem:
                problems.append(locator.line(("destinations", name, "timeout"), problem))
    return destinations


def _config_path(path: Path | str | None) -> tuple[Path | None, str]:
    """The file, and what named it (`STATEHOOK_CONFIG_FILE`, or "" for `--config` and the default)."""
    if path is not None:
        return Path(path), ""
    env = os.environ.get("STATEHOOK_CONFIG_FILE")
    if env:
        return Path(env), "STATEHOOK_CONFIG_FILE"
    default = Path("statehook.toml")
    return (default, "") if default.exists() else (None, "")


def _read_file(path: Path, named_by: str) -> tuple[str, dict[str, Any]]:
    """The file's text and its TOML, or ConfigError in one line that names the file (and the
    variable that named it)."""
    where = f"{named_by}: {path}" if named_by else str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{where}: no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{where}: a directory, not a TOML file"]) from None
    except PermissionError:
        raise ConfigError([f"{where}: cannot read it (permission denied)"]) from None
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read it ({exc.strerror or type(exc).__name__})"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{where}:{line}: not valid UTF-8 (byte {exc.start + 1}): a TOML file is UTF-8 text"]) \
            from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: not valid TOML: {exc}"]) from None


def _settings(toml_path: Path | None, locator: Locator,
              overrides: dict[str, Any]) -> tuple[Settings, list[str], set[str]]:
    """The settings, the problems of their own fields, and those fields. With such problems,
    the settings are made again with the fields at fault at their defaults, so that the
    providers, destinations, watches and routes that are not at fault are still checked, and
    every problem is told at once (the rest were told only once these were fixed)."""
    cls = settings_class_for(toml_path)
    try:
        return cls(**overrides), [], set()
    except ValidationError as exc:
        problems = locator.problems(exc, model=Settings)
        at_fault = {str(e["loc"][0]) for e in exc.errors() if e["loc"] and str(e["loc"][0]) in Settings.model_fields}
        if not at_fault or at_fault & set(overrides):
            raise ConfigError(problems) from None
        defaults = {name: Settings.model_fields[name].get_default(call_default_factory=True) for name in at_fault}
        try:
            return cls(**overrides, **defaults), problems, at_fault
        except (ValidationError, SettingsError, UnicodeDecodeError):
            raise ConfigError(problems) from None
    except SettingsError as exc:  # a JSON value of the environment that does not parse
        found = re.search(r'field "(\w+)"', str(exc))
        name = found.group(1) if found else "?"
        raise ConfigError([locator.line((name,), "not valid JSON (a list or a table set in the environment is "
                                                 "written as JSON)")]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{ENV_FILE}: not valid UTF-8"]) from None


class _Blocks(dict[str, dict[str, Any]]):
    """Provider or destination blocks by canonical name."""

    def __init__(self) -> None:
        super().__init__()
        self.in_file: set[str] = set()
        """the names the file has a table for"""
        self.ambiguous: set[str] = set()
        """the names several tables or variables spell: reported once, not validated"""


def _blocks(
    section: str, merged: dict[str, dict[str, Any]], file_section: Any, locator: Locator, problems: list[str]
) -> _Blocks:
    """The provider or destination blocks by canonical name, each a file table with the
    environment's variables for it merged over it. Two file tables of one canonical name
    are an error, naming both lines: the environment could not tell which one its
    variables are for."""
    file_names = list(file_section) if isinstance(file_section, dict) else []
    groups: dict[str, list[str]] = {}
    for name in merged:
        groups.setdefault(canonical_name(name), []).append(name)
    blocks = _Blocks()
    blocks.in_file = {canonical_name(n) for n in file_names}
    for key, names in groups.items():
        tables = sorted((n for n in names if n in file_names), key=file_names.index)
        from_env = [n for n in names if n not in file_names]
        for other in tables[1:]:
            first = locator.file_line((section, tables[0]))
            problems.append(locator.line((section, other), f"the same name as [{section}.{tables[0]}]"
                                         f"{f' at line {first}' if first else ''} (names compare without case and "
                                         "with - equal to _): rename one"))
        if not tables and len(from_env) > 1:
            problems.append(locator.line((section, key), "set by variables for several spellings of one name "
                                         f"({', '.join(sorted(from_env))}): use one"))
        if len(tables) > 1 or (not tables and len(from_env) > 1):
            blocks.ambiguous.add(key)
        block: dict[str, Any] = {}
        for name in tables[:1] + from_env:  # the environment's last: it wins
            block = _deep_merge(block, merged[name] or {})
        blocks[key] = block
    return blocks


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _no_table(toml_path: Path | None, name: str) -> str:
    where = f"{toml_path.name} has no [destinations.{name}]" if toml_path else "there is no config file"
    return (f"set in the environment, but {where}: a destination's kind and settings belong in the file "
            "(its secrets come from the environment)")


def _watch_kinds(cls_p: type[providers.Provider], watch: WatchSpec) -> tuple[str, ...]:
    """The kinds a watch may name: a watch by id polls one resource of its kind, so never "scan"."""
    return cls_p.kinds if watch.scan is not None else tuple(k for k in cls_p.kinds if k != "scan")


def _watch_problems(settings: Settings, provider_blocks: dict[str, dict[str, Any]], locator: Locator) -> list[str]:
    problems = []
    for i, watch in enumerate(settings.watches):
        cls_p = providers.REGISTRY.get(watch.provider)
        if cls_p is None:
            problems.append(locator.line(("watches", i, "provider"), f"unknown provider {watch.provider!r}"))
        elif watch.provider not in provider_blocks:
            problems.append(
                locator.line(
                    ("watches", i, "provider"),
                    f"provider {watch.provider!r} has no [providers.{watch.provider}] settings",
                )
            )
        elif watch.kind is not None and watch.kind not in (kinds := _watch_kinds(cls_p, watch)):
            # as the API and `watch add` say it; a kind is named only if it looks like one (never a stray secret)
            shown = f"kind {watch.kind!r}" if re.fullmatch(r"[a-z][a-z0-9_]{0,39}", watch.kind) else "such kind"
            by_id = " to watch by id" if watch.scan is None else ""
            problems.append(locator.line(("watches", i, "kind"),
                                         f"{watch.provider} has no {shown}{by_id} (known: {', '.join(kinds)})"))
        elif watch.scan is not None:
            for key, problem in scan_filter_problems(cls_p, watch.scan):
                problems.append(locator.line(("watches", i, "scan", *([key] if key else [])), problem))
    return problems + _watched_twice(settings, locator)


def _watched_twice(settings: Settings, locator: Locator) -> list[str]:
    """A resource named by two [[watches]]: one of them would set its interval and stall
    times over the other's, whichever the sync writes last."""
    problems: list[str] = []
    first: dict[tuple[str, str, str], int] = {}
    for i, watch in enumerate(settings.watches):
        cls_p = providers.REGISTRY.get(watch.provider)
        if cls_p is None or watch.scan is not None:
            continue
        kind = watch.kind or cls_p.default_kind
        for rid in dict.fromkeys(watch.ids):
            earlier = first.setdefault((watch.provider, kind, rid), i)
            if earlier != i:
                line = locator.file_line(("watches", earlier))
                shown = repr(rid) if len(rid) <= 64 else "an id"
                problems.append(locator.line(("watches", i, "ids"), f"{shown} is watched by watches.{earlier}"
                                             f"{f' (line {line})' if line else ''} too: a resource is watched once"))
    return problems


def _routes(
    settings: Settings, destination_blocks: dict[str, dict[str, Any]], locator: Locator, problems: list[str]
) -> list[Route]:
    routes = []
    named: dict[str, int] = {}
    intervals = _interval_names(settings, locator, problems)
    for i, route in enumerate(settings.routes):
        if route.name is not None:
            if route.name in named:
                first = locator.file_line(("routes", named[route.name]))
                problems.append(locator.line(("routes", i, "name"), f"routes.{named[route.name]}"
                                             f"{f' (line {first})' if first else ''} has this name too: a route's "
                                             "name is its key (throttles, digests), one route each"))
            else:
                named[route.name] = i
        targets = []
        for j, target in enumerate(route.to):
            if canonical_name(target) not in destination_blocks:
                problems.append(locator.line(("routes", i, "to", j), f"unknown destination {target!r}"))
            targets.append(canonical_name(target))
        if route.match.provider:
            for p in route.match.provider:
                if p not in providers.REGISTRY:
                    problems.append(locator.line(("routes", i, "match", "provider"), f"unknown provider {p!r}"))
        problems.extend(_window_problems(route, i, intervals, locator))
        routes.append(route.model_copy(update={"to": targets}))
    return routes


def _interval_names(settings: Settings, locator: Locator, problems: list[str]) -> set[str]:
    """The names of `[[time_intervals]]`; a name given twice is a problem."""
    names: dict[str, int] = {}
    for i, interval in enumerate(settings.time_intervals):
        if interval.name in names:
            first = locator.file_line(("time_intervals", names[interval.name]))
            problems.append(locator.line(("time_intervals", i, "name"), f"time_intervals.{names[interval.name]}"
                                         f"{f' (line {first})' if first else ''} has this name too: one each"))
        names.setdefault(interval.name, i)
    return set(names)


def _window_problems(route: Route, i: int, intervals: set[str], locator: Locator) -> list[str]:
    """A route's `mute_during` and `active_during` name time intervals that exist."""
    out = []
    label = f"route {route.name!r}" if route.name else f"routes.{i}"
    for field_name in ("mute_during", "active_during"):
        for j, name in enumerate(getattr(route, field_name) or ()):
            if name not in intervals:
                known = f"known: {', '.join(sorted(intervals))}" if intervals else "there are no [[time_intervals]]"
                out.append(locator.line(("routes", i, field_name, j),
                                        f"{label}: unknown time interval {name!r} ({known})"))
    return out


def _validate(
    model: type[BaseModel], block: dict[str, Any], prefix: tuple[str | int, ...], locator: Locator, problems: list[str]
) -> Any:
    try:
        return model.model_validate(block)
    except ValidationError as exc:
        problems.extend(locator.problems(exc, prefix=prefix, model=model))
        return None


SEND_MARGIN = 10.0
"""A retry job's time besides its send: reading the circuit, writing the attempt."""


def _outlasts_the_job(destination: DestinationSettings, job_timeout: float) -> str | None:
    """A send that may take longer than its retry job leaves the job cancelled by ARQ: the
    delivery neither retried nor dead-lettered."""
    limit = destination.send_limit()
    if limit is None or limit + SEND_MARGIN <= job_timeout:
        return None
    return (f"a send may take {format_seconds(limit)}, more than `worker.delivery_timeout` "
            f"({format_seconds(job_timeout)}) less {format_seconds(SEND_MARGIN)}: lower it or raise that")
