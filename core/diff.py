"""Structural diff of two snapshots as JSON-pointer changes. Pure."""

from __future__ import annotations

from typing import Any

from model.events import Change

__all__ = ["diff", "escape_pointer"]


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def diff(old: Any, new: Any, path: str = "") -> list[Change]:
    """Changes that turn `old` into `new`. Dicts recurse by key, lists by index;
    a key present on one side only is a change from/to None."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        for key in old.keys() | new.keys():
            sub = f"{path}/{escape_pointer(str(key))}"
            if key not in new:
                changes.append(Change(sub, old[key], None))
            elif key not in old:
                changes.append(Change(sub, None, new[key]))
            elif old[key] != new[key]:
                changes.extend(diff(old[key], new[key], sub))
        return sorted(changes, key=lambda c: c.path)
    if isinstance(old, list) and isinstance(new, list):
        changes = []
        for i in range(max(len(old), len(new))):
            sub = f"{path}/{i}"
            if i >= len(new):
                changes.append(Change(sub, old[i], None))
            elif i >= len(old):
                changes.append(Change(sub, None, new[i]))
            elif old[i] != new[i]:
                changes.extend(diff(old[i], new[i], sub))
        return changes
    if old == new and type(old) is type(new):
        return []
    return [Change(path or "/", old, new)]
