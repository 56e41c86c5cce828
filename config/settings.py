"""Settings from the environment (`STATEHOOK_…`, nested with `__`, `.env`) and a TOML file."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from config.schema import Duration, Route, TuningDuration, WatchSpec

__all__ = ["ApiSettings", "Settings", "WorkerTuning", "settings_class_for"]


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STATEHOOK_",
        env_nested_delimiter="__",
        env_file=".env",
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
