"""Sentry, when `STATEHOOK_SENTRY_DSN` is set: errors of workers (through sentry-sdk's ARQ
integration) and of the API, with secrets removed before anything leaves the process.

sentry-sdk sends exception messages, log breadcrumbs, job arguments and request data as
they are; statehook's exception messages and job arguments can carry URLs, provider
error bodies and echoes of credentials. `before_send` and `before_breadcrumb` pass every
string through the process's redactor (`worker.redact`: credential shapes and the
configuration's own secret values) and mask the values of credential-named keys. A log
event's arguments are dropped once its line is formatted (and redacted as a whole).
Local variables are not sent: an OAuth token fetched at run time sits in one, under no
name a redactor could recognise.

`init_sentry` must run before the worker is made (`worker.settings.make_worker`): the
integration wraps jobs in `arq.worker.create_worker`.

Both sentry-sdk 2.x and 3.x are supported. 3.x renamed what is collected (`data_collection`
in place of `include_local_variables` and `send_default_pii`, and collects user data, HTTP
bodies and job arguments unless told not to) and no longer turns its logging integration
on by itself; `sentry_options` asks either for the same: error logs as events, info logs as
breadcrumbs, no local variables, no bodies, headers, cookies, query strings or queue data.
"""

from __future__ import annotations

import importlib.metadata
import logging
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.arq import ArqIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from config import Config
from worker import redact

__all__ = ["before_breadcrumb", "before_send", "init_sentry", "sentry_options"]


def before_send(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event with every string redacted: message, exception values, breadcrumbs,
    extra, request (URL, query, headers, body), contexts and tags."""
    logentry = event.get("logentry")
    if isinstance(logentry, dict) and logentry.get("params"):
        # a log call's arguments travel apart from its template: keep only the formatted line
        if not logentry.get("formatted"):
            try:
                logentry["formatted"] = str(logentry.get("message", "")) % tuple(logentry["params"])
            except (TypeError, ValueError):
                logentry["formatted"] = str(logentry.get("message", ""))
        logentry["params"] = []
    cleaned: dict[str, Any] = redact.active().value(event)
    return cleaned


def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    cleaned: dict[str, Any] = redact.active().value(crumb)
    return cleaned


def _release() -> str | None:
    try:
        return f"statehook@{importlib.metadata.version('statehook')}"
    except importlib.metadata.PackageNotFoundError:
        return None


def sentry_options(config: Config, **overrides: Any) -> dict[str, Any]:
    settings = config.settings
    options: dict[str, Any] = {
        "dsn": settings.sentry_dsn.get_secret_value() if settings.sentry_dsn else None,
        "environment": settings.sentry_environment,
        "release": _release(),
        "integrations": [ArqIntegration(), LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
        "before_send": before_send,
        "before_breadcrumb": before_breadcrumb,
        "max_breadcrumbs": 50,
        **_collection_options(sdk_major()),
    }
    options.update(overrides)
    return options


def sdk_major() -> int:
    return int(sentry_sdk.VERSION.split(".", 1)[0])


_OFF = {"mode": "off"}


def _collection_options(major: int) -> dict[str, Any]:
    """What sentry-sdk may collect by itself, in the spelling of its major version: only
    what statehook sends through `before_send` and the breadcrumbs."""
    if major < 3:
        return {"include_local_variables": False}
    return {"data_collection": {
        "user_info": False, "cookies": _OFF, "http_headers": {"request": _OFF},
        "http_bodies": [], "url_query_params": _OFF, "database_query_data": False, "queues": False,
        "stack_frame_variables": False,
    }}


def init_sentry(config: Config, **overrides: Any) -> bool:
    """Turn Sentry on if the DSN is set (or `dsn` is given). Returns whether it is on.
    `overrides` reach `sentry_sdk.init` (tests pass a capturing `transport`)."""
    redact.configure(redact.secret_values(config))
    options = sentry_options(config, **overrides)
    if not options["dsn"]:
        return False
    sentry_sdk.init(**options)
    return True
