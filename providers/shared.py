"""Small pure helpers more than one provider uses: JSON values read strictly, progress
bands, presigned URLs and the wording of summaries."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["SIGNING_PARAMS", "count", "plural", "progress_bucket", "short", "stable_url", "without_signatures"]

SIGNING_PARAMS = frozenset(
    (
        "x-amz-signature x-amz-credential x-amz-expires x-amz-security-token x-amz-date"
        " x-goog-signature x-goog-credential x-goog-expires signature expires key-pair-id policy sig se st"
    ).split()
)
"""Query parameters of presigned URLs (S3, GCS, CloudFront, Azure SAS): their presence
makes the query volatile."""


def count(value: Any) -> int | None:
    """`value` if it is a JSON integer (not `true`), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def progress_bucket(percent: float, step: int) -> int:
    """Which `step`-wide band a percentage is in: an event fires when the band changes."""
    return int(percent // step)


def stable_url(url: str) -> str:
    """`url` without its query when the query is a presigned one (it changes per request)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    names = {pair.split("=", 1)[0].strip().casefold() for pair in parts.query.split("&")}
    if names & SIGNING_PARAMS:
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return url


def without_signatures(value: Any) -> Any:
    """`value` with every presigned URL in it reduced to its stable part."""
    if isinstance(value, str):
        return stable_url(value) if value.startswith(("http://", "https://")) else value
    if isinstance(value, dict):
        return {k: without_signatures(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_signatures(v) for v in value]
    return value


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def short(text: str, limit: int = 200) -> str:
    """`text`, cut to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
