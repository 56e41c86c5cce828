"""Settings and the config-file schema: loading, validation, masked display."""

from config.load import Config, ConfigError, load_config

__all__ = ["Config", "ConfigError", "load_config"]
