"""A worker's beat as the registry stores it (store/registry.py), with plain values."""

from __future__ import annotations

from store.registry import WorkerBeat, beat_lasts, read_beat


def test_a_beat_is_read_and_anything_else_is_not() -> None:
    assert read_beat("w", b'{"at": 1700000000.5, "interval": 0.5, "pid": 7}') == WorkerBeat("w", 1700000000.5, 0.5, 7)
    assert read_beat("w", b'{"at": 1700000000}') == WorkerBeat("w", 1700000000.0, 30.0)
    for raw in (b"not json", b'{"at": "yesterday"}', b'{"at": 1, "interval": null}', b"[1, 2]", b'"x"',
                b'{"at": true}', b"-1", b"1700000000"):
        assert read_beat("w", raw) is None, raw


def test_a_beat_is_fresh_within_its_interval_and_counts_for_two_more() -> None:
    beat = WorkerBeat("w", at=100.0, interval=30.0)
    assert beat.fresh(133.0) and not beat.fresh(133.1)  # 10 % for the write
    assert WorkerBeat("w", 100.0, 0.5).fresh(101.5) and not WorkerBeat("w", 100.0, 0.5).fresh(101.6)
    assert beat.age(90.0) == 0.0
    assert beat_lasts(30.0) == 61.0
