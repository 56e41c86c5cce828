"""Settings from the environment (`STATEHOOK_…`, nested with `__`, `.env`) and a TOML file."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from config.schema import WatchdogSettings, WatchSpec
from model.routes import Route
from model.time_intervals import NamedTimeInterval
from model.values import Duration, TuningDuration, check_duration, parse_duration
from store.redis_url import redis_url_problem

__all__ = ["ENV_FILE", "ENV_PREFIX", "ApiSettings", "Settings", "SilenceSettings", "WorkerTuning",
           "environment_variables", "redis_url_origin", "sentry_dsn_problem", "settings_class_for"]

ENV_PREFIX = "STATEHOOK_"
ENV_FILE = ".env"


class WorkerTuning(BaseModel):
    model_config = ConfigDict(extra="forbid")

    poll_batch_size: int = Field(default=200, ge=1, le=5000)
    schedule_max_per_tick: int = Field(default=20_000, ge=1)
    poll_lease: Duration = Field(
        default=60.0, description="a claimed resource is not due again before this (a lost poll job's resources "
        "are claimed again after it)")
    max_jobs: int = Field(default=32, ge=1)
    job_timeout: Duration = 60.0
    delivery_timeout: Duration = 30.0
    delivery_concurrency: int = Field(default=32, ge=1, description="sends in flight per delivery batch")
    history_length: int = Field(default=50, ge=0)
    health_interval: TuningDuration = 30.0
    shutdown_grace: Duration = 20.0
    reclaim_idle: TuningDuration = Field(default=15.0, description="outbox entries pending this long are reclaimed")
    takeover_after: Duration = Field(
        default=25.0, ge=3.0, le=300.0,
        description="a job whose worker died (or hangs) is run by another worker this long after its last renewal")
    event_loop: Literal["asyncio", "uvloop"] = Field(
        default="asyncio", description="the worker's event loop; uvloop needs the uvloop extra"
    )
    gc_threshold: int = Field(
        default=10_000, ge=700, description="allocations between the worker's young-generation collections"
    )

    @field_validator("event_loop")
    @classmethod
    def _loop_installed(cls, value: str) -> str:
        if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError("uvloop is not installed (pip install 'statehook[uvloop]')")
        return value


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    token: SecretStr | None = Field(default=None, description="bearer token for management calls")
    hook_tokens: dict[str, SecretStr] = Field(default_factory=dict, description="per provider, inbound hooks")


def _silence_max(value: float) -> float:
    return check_duration(value, 60.0, 366 * 86400.0)


class SilenceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_duration: Annotated[float, BeforeValidator(parse_duration), AfterValidator(_silence_max)] = Field(
        default=30 * 86400.0, description="the longest a silence may last (from 1m to 366d)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=ENV_FILE,
        # a `.env` line naming no setting is warned about (by `check`), as in the environment; not
        # an error blamed on the config file, and other programs' lines are none of statehook's
        dotenv_filtering="only_existing",
        extra="forbid",
        case_sensitive=False,
    )

    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    config_file: Path | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    sentry_dsn: SecretStr | None = None
    sentry_environment: str | None = None
    worker: WorkerTuning = Field(default_factory=WorkerTuning)
    api: ApiSettings = Field(default_factory=ApiSettings)
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    watches: list[WatchSpec] = Field(default_factory=list)
    destinations: dict[str, dict[str, Any]] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    watchdog: WatchdogSettings = Field(default_factory=WatchdogSettings)
    time_intervals: list[NamedTimeInterval] = Field(default_factory=list)
    silences: SilenceSettings = Field(default_factory=SilenceSettings)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        """`DEBUG` as `debug`: log levels are written in capitals as often as not."""
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr) -> SecretStr:
        problem = redis_url_problem(value.get_secret_value())
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("sentry_dsn")
    @classmethod
    def _sentry_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # set but empty: Sentry off, as sentry-sdk itself reads it
        problem = sentry_dsn_problem(value.get_secret_value().strip())
        if problem is not None:
            raise ValueError(problem)
        return SecretStr(value.get_secret_value().strip())


_DSN_FORM = "https://PUBLIC_KEY@o0.ingest.sentry.io/PROJECT_ID"
_DSN_REASONS = {
    "Unsupported scheme": "its scheme is not https:// or http://",
    "Missing hostname": "it names no host",
    "Missing public key": "it has no public key before the @",
    "Invalid project": "its last path segment, the project id, is not a number",
}


def sentry_dsn_problem(dsn: str) -> str | None:
    """Why sentry-sdk's own parser refuses `dsn`, without quoting it (its key is a secret)."""
    from sentry_sdk.utils import BadDsn, Dsn

    try:
        Dsn(dsn)
    except BadDsn as exc:
        reason = next((r for prefix, r in _DSN_REASONS.items() if str(exc).startswith(prefix)), "sentry-sdk refuses it")
        return f"not a Sentry DSN ({reason}): it looks like {_DSN_FORM}"
    except ValueError:  # urllib: a port that is not a number from 0 to 65535
        return f"not a Sentry DSN (its port is not a number from 0 to 65535): it looks like {_DSN_FORM}"
    return None


def environment_variables() -> dict[str, str]:
    """The `STATEHOOK_…` names set, upper-cased, and where: "environment" or ".env" (the
    environment wins, as for the values)."""
    found: dict[str, str] = {}
    if Path(ENV_FILE).is_file():
        try:
            names = list(dotenv_values(ENV_FILE))
        except (OSError, UnicodeDecodeError):
            names = []
        found.update((n.upper(), ENV_FILE) for n in names if n.upper().startswith(ENV_PREFIX))
    found.update((n.upper(), "environment") for n in os.environ if n.upper().startswith(ENV_PREFIX))
    return found


def settings_class_for(toml_file: Path | None) -> type[Settings]:
    """A Settings class that reads `toml_file` below the environment (env wins, deep-merged)."""

    class FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
            if toml_file is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
            return tuple(sources)

    return FileSettings


def redis_url_origin() -> str:
    """`STATEHOOK_REDIS_URL: ` (or `.env: STATEHOOK_REDIS_URL: `) when a variable sets the
    Redis URL, else "" (the config file or the default)."""
    origin = environment_variables().get("STATEHOOK_REDIS_URL")
    if origin is None:
        return ""
    return "STATEHOOK_REDIS_URL: " if origin == "environment" else f"{origin}: STATEHOOK_REDIS_URL: "
