"""A watch's meta field: only what differs from the defaults is stored."""

from __future__ import annotations

import pytest

from store.snapshots import WatchMeta


@pytest.mark.parametrize(
    "meta",
    [WatchMeta(60.0), WatchMeta(3600.0, discovered=True, scan={"project_id": "p1"}, source="scan"),
     WatchMeta(0.2, source="cli")],
)
def test_meta_reads_back_as_it_was_written(meta: WatchMeta) -> None:
    assert WatchMeta.from_json(meta.to_json()) == meta


def test_a_plain_watch_stores_only_its_interval() -> None:
    assert WatchMeta(60.0).to_json() == b'{"i":60.0}'


def test_meta_written_with_every_field_still_reads() -> None:
    raw = b'{"i": 60, "d": false, "s": null, "src": "api"}'
    assert WatchMeta.from_json(raw) == WatchMeta(60.0)
