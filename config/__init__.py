"""Settings and the config-file schema: loading, validation, masked display.

`Config`, `ConfigError` and `load_config` are imported on first use, so that a module the
loader itself imports (`providers.base`) can use `config.schema`'s types without a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config.load import Config, ConfigError, load_config

__all__ = ["Config", "ConfigError", "load_config"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from config import load

        return getattr(load, name)
    raise AttributeError(f"module 'config' has no attribute {name!r}")
