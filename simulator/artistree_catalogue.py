"""The made-up content of the Artistree stand-in's orders: projects, users, titles, the
pool of variants (analyses, annotations, layers) that many orders share, and URLs shaped
like S3 presigned GETs. Deterministic (seeded), so that a rendered order is the same in
every run but for its presigned URLs."""

from __future__ import annotations

import hashlib
import os
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ADJECTIVES",
    "DEFAULT_PROJECT_ID",
    "FORMATS",
    "NOUNS",
    "PROJECTS",
    "REVIEWERS",
    "TAGS",
    "VARIANTS",
    "Presigner",
    "Variant",
    "annotation",
    "iso",
    "uuid_from",
]

DEFAULT_PROJECT_ID = "5b0e9c1a-7d4f-4e2b-9a63-0f8d2c71e4b5"
PROJECTS = (
    (DEFAULT_PROJECT_ID, "Spring Campaign 2026", "admin"),
    ("c3f18a27-90be-4d15-8e0c-6a4b7d2f9e01", "Editorial Illustrations", "member"),
    ("e8a2d4c6-1f37-4b9a-b5d0-93c7e6f1a248", "Album Covers", "viewer"),
)

_BUCKET = "https://artistree-human-prod-assets.s3.us-east-1.amazonaws.com"
_ACCESS_KEY = "ASIAQ3EGUVJ7SIMULATE"
_USERS = (
    ("mara.lindqvist", "mara.lindqvist@northlight.studio", "Mara Lindqvist"),
    ("jonah.okafor", "jonah.okafor@northlight.studio", "Okafor Illustration"),
    ("ines.carvalho", "ines@carvalho-art.pt", "Inês Carvalho"),
    ("kenji.watanabe", "kenji.w@paperlantern.jp", None),
)
REVIEWERS = ("qa.lead@northlight.studio", "reviewer@artistree.io", "certification@artistree.io")
ADJECTIVES = (
    "Crimson",
    "Quiet",
    "Northern",
    "Gilded",
    "Paper",
    "Electric",
    "Hollow",
    "Saltwater",
    "Midnight",
    "Copper",
    "Velvet",
    "Orchard",
    "Lantern",
    "Tidal",
    "Amber",
    "Cobalt",
)
NOUNS = (
    "Harbor",
    "Fox",
    "Cathedral",
    "Garden",
    "Skyline",
    "Lighthouse",
    "Orchid",
    "Parade",
    "Meadow",
    "Atlas",
    "Heron",
    "Market",
    "Comet",
    "Bridge",
    "Willow",
    "Signal",
)
FORMATS = ("Poster", "Cover", "Spread", "Portrait", "Study", "Mural", "Sketch", "Print")
_EXTENSIONS = (".psd", ".psd", ".procreate", ".kra", ".tiff")
TAGS = (("print", "client-a"), ("editorial",), ("cover", "final"), (), ("sketch", "wip"), ("campaign",))
_ANALYSES = ("process_replay", "layer_history", "ai_image_detection", "metadata_integrity", "stroke_dynamics")
_LAYERS = ("Background", "Sketch", "Line Art", "Flats", "Shading", "Highlights", "Texture")


@dataclass(frozen=True, slots=True)
class Variant:
    """The parts of an order that many orders can share (never mutated once built)."""

    user: tuple[str, str, str | None]
    extension: str
    analysis_list: list[dict[str, Any]]
    annotations: list[dict[str, Any]]
    layer_names: tuple[str, ...]
    confidence: float
    remediation: float


def annotation(rng: random.Random, *, needs_remediation: bool) -> dict[str, Any]:
    x, y = rng.randrange(0, 3000), rng.randrange(0, 2000)
    w, h = rng.randrange(40, 900), rng.randrange(40, 900)
    note = (
        "Brush dynamics inconsistent with the recorded process"
        if needs_remediation
        else ("Texture matches the layer history")
    )
    annotation_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return {
        "id": annotation_id,
        "bodies": [
            {"value": note, "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "annotation": annotation_id}
        ],
        "properties": {
            "needs_remediation": needs_remediation,
            "ai_likelihood": round(rng.uniform(0.6, 0.95) if needs_remediation else rng.uniform(0.01, 0.2), 3),
        },
        "target": {
            "annotation": annotation_id,
            "selector": {
                "type": "RECTANGLE",
                "geometry": {
                    "bounds": {"minX": x, "minY": y, "maxX": x + w, "maxY": y + h},
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "points": [[x, y], [x + w, y], [x + w, y + h], [x, y + h]],
                },
            },
        },
    }


def _build_variants(count: int = 32) -> tuple[Variant, ...]:
    rng = random.Random(20261123)
    variants = []
    for i in range(count):
        analyses = rng.sample(_ANALYSES, rng.randint(3, 5))
        variants.append(
            Variant(
                user=_USERS[i % len(_USERS)],
                extension=_EXTENSIONS[i % len(_EXTENSIONS)],
                analysis_list=[{"analysis_type": a, "analysis_passed": True} for a in analyses],
                annotations=[annotation(rng, needs_remediation=False)],
                layer_names=tuple(rng.sample(_LAYERS, rng.randint(1, 3))),
                confidence=0.0,
                remediation=0.0,
            )
        )
    return tuple(variants)


VARIANTS = _build_variants()


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def uuid_from(text: str) -> str:
    h = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


class Presigner:
    """URLs shaped like S3 presigned GETs: the date part is cached per second, and every URL
    gets a fresh signature, so two answers never carry the same URL."""

    def __init__(self) -> None:
        self._second = -1
        self._query = ""

    def query_prefix(self, epoch: int) -> str:
        now = int(time.time())
        if now != self._second:
            t = time.gmtime(now)
            self._second = now
            self._query = (
                f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={_ACCESS_KEY}{{epoch:04d}}"
                f"%2F{time.strftime('%Y%m%d', t)}%2Fus-east-1%2Fs3%2Faws4_request"
                f"&X-Amz-Date={time.strftime('%Y%m%dT%H%M%SZ', t)}&X-Amz-Expires=3600"
                "&X-Amz-SignedHeaders=host&X-Amz-Signature="
            )
        return self._query.replace("{epoch:04d}", f"{epoch:04d}")

    def urls(self, keys: Sequence[str], epoch: int) -> list[str]:
        query = self.query_prefix(epoch)
        signatures = os.urandom(32 * len(keys)).hex()
        return [f"{_BUCKET}/{key}{query}{signatures[64 * i : 64 * (i + 1)]}" for i, key in enumerate(keys)]
