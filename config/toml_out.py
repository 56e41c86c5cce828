"""Writing TOML values: the demo, the tests and the benchmarks write real config files
(tomllib only reads), so that every run goes through the same loader an operator's does."""

from __future__ import annotations

from typing import Any

__all__ = ["toml_value"]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")
