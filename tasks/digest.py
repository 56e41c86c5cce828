"""Canonical bytes and digest of a snapshot. Pure."""

from __future__ import annotations

import hashlib

import orjson

from tasks.model import Snapshot

__all__ = ["canonical", "digest"]


def canonical(snapshot: Snapshot) -> bytes:
    return orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS)


def digest(canonical_bytes: bytes) -> str:
    return hashlib.blake2b(canonical_bytes, digest_size=12).hexdigest()
