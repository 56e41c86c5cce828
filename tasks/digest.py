"""Canonical bytes and digest of a snapshot. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson

from providers.listing import blank_values
from tasks.model import Snapshot

__all__ = ["body_fingerprint", "canonical", "digest", "fingerprint"]


def canonical(snapshot: Snapshot) -> bytes:
    return orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS)


def digest(canonical_bytes: bytes) -> str:
    return hashlib.blake2b(canonical_bytes, digest_size=12).hexdigest()


def fingerprint(raw: bytes) -> str:
    """Of a listed item's bytes as the provider sent them (volatile values blanked): equal
    bytes, unchanged item, without a parse. SHA-256 here, where the CPU has SHA extensions:
    2.7 ms for 1,000 items of 2.2 KB, blake2b 4.4 ms."""
    return "l" + hashlib.sha256(raw).hexdigest()[:23]


def body_fingerprint(body: bytes, volatile: Sequence[str]) -> str:
    """`fingerprint` of a fetched body with the values of `volatile` keys blanked; "" when
    the body cannot be blanked (an unterminated string: the parse will say what is wrong)."""
    try:
        return fingerprint(blank_values(body, volatile))
    except ValueError:
        return ""
