"""A watch's meta field: only what differs from the defaults is stored."""

from __future__ import annotations

import pytest

from store.snapshots import CorruptRecord, WatchMeta


@pytest.mark.parametrize(
    "meta",
    [WatchMeta(60.0), WatchMeta(3600.0, discovered=True, scan={"project_id": "p1"}, source="scan"),
     WatchMeta(0.2, source="cli")],
)
def test_meta_reads_back_as_it_was_written(meta: WatchMeta) -> None:
    assert WatchMeta.from_json(meta.to_json()) == meta


def test_a_plain_watch_stores_only_its_interval() -> None:
    assert WatchMeta(60.0).to_json() == b'{"i":60.0}'


@pytest.mark.parametrize("raw", [b'{"i": 60, "d": false, "s": null, "src": "api"}', b'{"i": 60, "d": false}',
                                 b'{"i": 60, "s": null}', b'{"i": 60, "src": "api"}'])
def test_a_default_spelled_out_is_not_a_stored_watch(raw: bytes) -> None:
    """The long form (every field, defaults included) was never stored: it is unreadable."""
    with pytest.raises(CorruptRecord):
        WatchMeta.from_json(raw, "sh:meta[x]")


def test_a_stored_watch_reads_with_its_defaults_filled_in() -> None:
    assert WatchMeta.from_json(b'{"i":60}') == WatchMeta(60.0)
    assert WatchMeta.from_json(b'{"i":5,"d":true,"src":"cli"}') == WatchMeta(5.0, discovered=True, source="cli")
