"""Logging: readable lines by default, JSON when asked; rkey and event id carried as fields.

What is logged where: one line per poll batch outcome and per delivery attempt at debug,
one per event at info, trouble at warning and above. Every line passes a filter that
redacts secrets (`worker.redact`) before any handler formats it.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

import orjson

from worker import redact

__all__ = ["EXTRA_FIELDS", "JsonFormatter", "RedactingFilter", "setup_logging"]

EXTRA_FIELDS = ("rkey", "event_id", "destination", "provider", "outcome", "outcomes", "duration_ms", "worker_id")


class RedactingFilter(logging.Filter):
    """Renders the message (and the traceback) once, redacted, so that no formatter sees
    the raw arguments. Attached to handlers, so it sees records from every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = redact.active()
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the template, drop the arguments
            message = str(record.msg)
        record.msg = redactor.text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor.text(record.stack_info)
        for key in EXTRA_FIELDS:
            value = record.__dict__.get(key)
            if isinstance(value, str | dict | list):
                setattr(record, key, redactor.value(value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in EXTRA_FIELDS:
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str = "info", fmt: str = "text", *, stream: IO[str] | None = None) -> logging.Handler:
    """One handler on the root logger, redacting; returns it (tests read what it wrote)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("arq").setLevel(logging.WARNING if level != "debug" else logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler
