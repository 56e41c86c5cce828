"""Where a configuration value was set, for an error that names it: the file and line, or
the environment variable (or `.env` line); and which `STATEHOOK_…` variables set nothing."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args, get_origin

from dotenv import dotenv_values
from pydantic import AliasChoices, BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

import notifiers
import notifiers.templates
import providers
from config.settings import (
    ENV_FILE,
    ENV_PREFIX,
    ApiSettings,
    Settings,
    WorkerTuning,
)
from model.values import format_seconds, parse_duration

__all__ = ["OTHER_VARIABLES", "Locator", "canonical_name", "dotted", "unknown_variables", "variable_for"]

OTHER_VARIABLES = frozenset({"STATEHOOK_BENCH_PROFILE"})
"""`STATEHOOK_…` variables that are not settings but are read by a tool of this repository."""

NESTED = frozenset({"worker", "api", "providers", "destinations"})
"""The settings an environment variable reaches into with `__`."""


def canonical_name(name: str) -> str:
    """Destination names compare without case and with `_` = `-`, so that the environment
    (`STATEHOOK_DESTINATIONS__OPS_SLACK__WEBHOOK_URL`) reaches `[destinations.ops-slack]`."""
    return name.strip().lower().replace("_", "-")


def _env_names(name: str, info: FieldInfo) -> list[str]:
    """How a field is written in a variable: its name, or the names its validation alias accepts."""
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [c.upper() for c in alias.choices if isinstance(c, str)]
    return [(alias if isinstance(alias, str) else info.alias or name).upper()]


def _known_variables(destination_blocks: dict[str, dict[str, Any]]) -> list[str]:
    """Every variable name that sets something, for the nearest-name hint."""
    names = [ENV_PREFIX + n.upper() for n in Settings.model_fields if n not in NESTED]
    for section, model in (("WORKER", WorkerTuning), ("API", ApiSettings)):
        names += [f"{ENV_PREFIX}{section}__{e}" for n, i in model.model_fields.items() for e in _env_names(n, i)]
    names += [f"{ENV_PREFIX}API__HOOK_TOKENS__{p.upper()}" for p in providers.REGISTRY]
    for p, cls in providers.REGISTRY.items():
        fields = cls.settings_model.model_fields
        names += [f"{ENV_PREFIX}PROVIDERS__{p.upper()}__{e}" for n, i in fields.items() for e in _env_names(n, i)]
    for d, block in destination_blocks.items():
        kind = notifiers.REGISTRY.get(str(block.get("kind")))
        models = [kind.settings_model] if kind else [c.settings_model for c in notifiers.REGISTRY.values()]
        env_name = d.upper().replace("-", "_")
        names += [f"{ENV_PREFIX}DESTINATIONS__{env_name}__{e}"
                  for m in models for n, i in m.model_fields.items() for e in _env_names(n, i)]
    return sorted(set(names))


def unknown_variables(env: dict[str, str], destination_blocks: dict[str, dict[str, Any]]) -> list[str]:
    """A warning for each `STATEHOOK_…` variable that sets nothing (pydantic-settings ignores
    them), with the nearest name that does. Never its value."""
    warnings = []
    known: list[str] | None = None
    for name, origin in sorted(env.items()):
        top, nested, _ = name.removeprefix(ENV_PREFIX).lower().partition("__")
        if name in OTHER_VARIABLES or (top in Settings.model_fields and (not nested or top in NESTED)):
            continue
        known = known if known is not None else _known_variables(destination_blocks)
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        where = f" (in {ENV_FILE})" if origin == ENV_FILE else ""
        warnings.append(f"{name}{where} sets nothing: not a statehook setting, ignored"
                        + (f" (did you mean {near[0]}?)" if near else ""))
    return warnings


def _norm(part: str | int) -> str | int:
    return part.lower().replace("-", "_") if isinstance(part, str) else part


def _values(env: dict[str, str]) -> dict[str, str]:
    """The values of the variables `env` names (upper-cased), the environment's over `.env`'s:
    read to see which fields a JSON table sets, never shown."""
    values: dict[str, str] = {}
    if ENV_FILE in env.values():
        try:
            values.update((n.upper(), v) for n, v in dotenv_values(ENV_FILE).items() if v is not None)
        except (OSError, UnicodeDecodeError):
            pass
    values.update((n.upper(), v) for n, v in os.environ.items() if n.upper() in env)
    return values


def _leaves(value: Any, path: tuple[str | int, ...] = ()) -> Iterable[tuple[str | int, ...]]:
    """The fields a value sets: each leaf of a table, merged into the file's (a list or any
    other value replaces what the file has below it)."""
    if not isinstance(value, dict):
        yield path
        return
    for key, item in value.items():
        yield from _leaves(item, (*path, _norm(str(key))))


def _set_by_variable(name: str, value: str | None) -> Iterable[tuple[str | int, ...]]:
    """The fields variable `name` sets, normalized: the leaves of a JSON table
    (`STATEHOOK_WORKER='{"max_jobs": 0}'` sets worker.max_jobs), else its own."""
    path = tuple(_norm(part) for part in name.removeprefix(ENV_PREFIX).lower().split("__"))
    try:
        parsed = json.loads(value) if value and value.lstrip().startswith("{") else None
    except ValueError:
        parsed = None
    return [(*path, *leaf) for leaf in _leaves(parsed)] if isinstance(parsed, dict) else [path]


class Locator:
    """Where a dotted field was set: the environment variable that set it (the environment
    wins), else its file line, as well as a TOML file without positions allows."""

    def __init__(self, path: Path | None, text: str, env: dict[str, str] | None = None) -> None:
        self.path = path
        self.keys: dict[tuple[str | int, ...], int] = {}
        self.env: dict[tuple[str | int, ...], str] = {}
        self.set_by: dict[tuple[str | int, ...], str] = {}
        """each field a variable sets (what is below a leaf too), normalized: it wins over a file line"""
        values = _values(env or {})
        for name, origin in (env or {}).items():
            shown = f"{ENV_FILE}: {name}" if origin == ENV_FILE else name
            self.env[tuple(name.removeprefix(ENV_PREFIX).lower().split("__"))] = shown
            for field_path in _set_by_variable(name, values.get(name)):
                self.set_by[field_path] = shown
        self._index(text)

    def _index(self, text: str) -> None:
        table: tuple[str | int, ...] = ()
        arrays: dict[tuple[str | int, ...], int] = {}
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if line.startswith("["):
                line = _without_comment(line)  # `[providers.rev]   # prod`
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

    def file_line(self, loc: tuple[str | int, ...]) -> int | None:
        """The line of exactly this key, else of one spelled the same but for case and -/_."""
        if loc in self.keys:
            return self.keys[loc]
        normalized = tuple(_norm(x) for x in loc)
        return next((n for key, n in self.keys.items() if tuple(_norm(x) for x in key) == normalized), None)

    def _variable(self, loc: tuple[str | int, ...]) -> str | None:
        return self.env.get(tuple(_norm(x) for x in loc))

    def where(self, loc: Iterable[str | int]) -> str:
        loc = tuple(loc)
        normalized = tuple(_norm(x) for x in loc)
        for n in range(len(loc), 0, -1):  # a variable that sets the field, before a file line it overrides
            if normalized[:n] in self.set_by:
                return f"{self.set_by[normalized[:n]]}: "
        for n in range(len(loc), 0, -1):
            variable = self._variable(loc[:n])
            if variable is not None:
                return f"{variable}: "
            lineno = self.file_line(loc[:n])
            if lineno is not None and self.path is not None:
                return f"{self.path}:{lineno}: "
        block = tuple(_norm(x) for x in loc[:2])
        below = sorted(shown for key, shown in self.env.items() if key[: len(block)] == block)
        if below and len(block) == 2:  # a provider or destination only the environment names
            return ", ".join(below) + ": "
        return f"{self.path}: " if self.path is not None else ""

    def line(self, loc: tuple[str | int, ...], message: str) -> str:
        return f"{self.where(loc)}{dotted(loc)}: {message}"

    def problems(
        self, exc: ValidationError, *, prefix: tuple[str | int, ...] = (), model: type[BaseModel] | None = None
    ) -> list[str]:
        out = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = (*prefix, *err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            fields = _fields_at(model, err["loc"][:-1]) if model is not None else None
            if err["type"] == "missing":
                field_name = str(err["loc"][-1]) if err["loc"] else ""
                secret = fields is not None and _is_secret(fields.get(field_name))
                env = variable_for(loc)
                message = f"missing{' secret' if secret else ''}: set it in the file or as {env}"
            elif err["type"] == "extra_forbidden":
                near = difflib.get_close_matches(str(err["loc"][-1]), list(fields or ()), n=1)
                message = "unknown field" + (f" (did you mean {near[0]}?)" if near else "")
            elif err["type"] in _BOUNDS and fields is not None and _is_duration(fields.get(str(err["loc"][-1]))):
                bound_name, words = _BOUNDS[err["type"]]
                message = f"{words} {format_seconds(float(err.get('ctx', {})[bound_name]))}"
            out.append(self.line(loc, message))
        return out


def _fields_at(model: type[BaseModel], loc: Iterable[str | int]) -> dict[str, FieldInfo] | None:
    """The fields of the model at `loc` inside `model` (following nested models, and the
    items of a list of them: `watches.0`), if it is one."""
    annotation: Any = model
    for part in loc:
        if isinstance(part, int) and get_origin(annotation) is list:
            annotation = get_args(annotation)[0]
            continue
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        info = annotation.model_fields.get(str(part))
        annotation = info.annotation if info is not None else None
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return None
    return annotation.model_fields


_BOUNDS = {"greater_than_equal": ("ge", "at least"), "less_than_equal": ("le", "at most"),
           "greater_than": ("gt", "more than"), "less_than": ("lt", "less than")}
"""a bound of a duration, said with its unit (pydantic says "greater than or equal to 3")"""


def _is_duration(info: FieldInfo | None) -> bool:
    return info is not None and any(getattr(m, "func", None) is parse_duration for m in info.metadata)


def _is_secret(info: FieldInfo | None) -> bool:
    return (
        info is not None
        and info.annotation is not None
        and SecretStr in (getattr(info.annotation, "__args__", ()) or (info.annotation,))
    )


def _without_comment(line: str) -> str:
    """A table header without a trailing `# …` comment: the first `#` outside quotes."""
    quote = ""
    escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif quote:
            escaped = quote == '"' and ch == "\\"
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i].rstrip()
    return line


def _split_key(key: str) -> list[str]:
    return [part.strip().strip('"').strip("'") for part in re.split(r"\.(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", key)]


def variable_for(loc: Iterable[str | int]) -> str:
    """The `STATEHOOK_…` variable that sets the field at `loc` (`ops-slack` as `OPS_SLACK`)."""
    return ENV_PREFIX + "__".join(str(x).upper().replace("-", "_") for x in loc)


def dotted(loc: Iterable[str | int]) -> str:
    return ".".join(str(x) for x in loc)
