"""The config file's own models: watches and routes, and the small value types they use.

Providers and destinations are validated by the models their own modules declare
(`Provider.settings_model`, `Notifier.settings_model`), so that adding one touches
nothing here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from tasks.model import Severity

__all__ = [
    "TEMPLATE_KEYS",
    "Duration",
    "Route",
    "RouteMatch",
    "TemplateKey",
    "Templates",
    "WatchSpec",
    "parse_duration",
]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `"90s"`, `"5m"`, `"1h30m"`, `"250ms"`."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    text = value.strip().lower().replace(" ", "")
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h)")
    return total


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]

TemplateKey = Literal[
    "subject", "body", "text", "html", "slack", "digest_subject", "digest_text", "digest_html", "digest_slack"
]
"""What a template renders: `subject` (email subject and Slack fallback text), `text` and
`html` (email parts), `slack` (the Slack message section), `body` (text and Slack at once);
the `digest_` ones render a digest of several events. See notifiers/templates.py."""

TEMPLATE_KEYS: tuple[str, ...] = get_args(TemplateKey)


def _body_shorthand(value: Any) -> Any:
    return {"body": value} if isinstance(value, str) else value


Templates = Annotated[dict[TemplateKey, str], BeforeValidator(_body_shorthand)]
"""Jinja2 sources by what they render. A plain string is the `body`."""


class WatchSpec(BaseModel):
    """What to poll: explicit ids, or a scan of a collection (e.g. a project's orders)."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    kind: str | None = None
    ids: list[str] = Field(default_factory=list)
    scan: dict[str, str] | None = None
    interval: Duration = 60.0
    discovered: bool = Field(default=False, description="emit *.discovered for resources first seen")

    @model_validator(mode="after")
    def _ids_or_scan(self) -> WatchSpec:
        if not self.ids and self.scan is None:
            raise ValueError("a watch needs `ids` or `scan`")
        if self.ids and self.scan is not None:
            raise ValueError("a watch has either `ids` or `scan`, not both")
        return self


class RouteMatch(BaseModel):
    """Every given field must match; a list matches when any of its values does.
    `type` takes globs (`*.state_changed`); `tags` matches when the event has any of them."""

    model_config = ConfigDict(extra="forbid")

    provider: list[str] | None = None
    type: list[str] | None = None
    state: list[str] | None = None
    severity: list[Severity] | None = None
    tags: list[str] | None = None
    project: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _scalars_to_lists(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in data.items()}
        return data


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    match: RouteMatch = Field(default_factory=RouteMatch)
    to: list[str] = Field(min_length=1)
    throttle: Duration | None = Field(
        default=None, description="the same event type for the same resource at most once per window"
    )
    digest: Duration | None = Field(
        default=None, description="gather the events of each window into one message (made for email)"
    )
    template: Templates | None = Field(
        default=None, description="template overrides for this route's deliveries (a string is the body)"
    )
