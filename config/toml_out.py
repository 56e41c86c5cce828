"""Writing TOML values: the demo, the tests and the benchmarks write real config files
(tomllib only reads), so that every run goes through the same loader an operator's does."""

from __future__ import annotations

from typing import Any

__all__ = ["toml_array", "toml_table", "toml_value"]


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


def toml_table(header: str, block: dict[str, Any]) -> list[str]:
    """`[header]` and its `key = value` lines, then a blank line."""
    return [f"[{header}]", *(f"{k} = {toml_value(v)}" for k, v in block.items()), ""]


def toml_array(header: str, items: list[dict[str, Any]]) -> list[str]:
    """One `[[header]]` table per item."""
    return [line for item in items for line in (f"[[{header}]]", *toml_table(header, item)[1:])]
