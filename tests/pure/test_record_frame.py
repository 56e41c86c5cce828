"""A resource's record: its packed snapshot and timeline in one string (store/record_frame.py)."""

from __future__ import annotations

import pytest

from store import record_frame
from store.history import pack_snapshot, unpack_snapshot

SNAP = pack_snapshot(b'{"order_state":"Failed"}')


def test_a_record_without_a_timeline_is_the_packed_snapshot_alone() -> None:
    raw = record_frame.join(SNAP, [])
    assert raw == SNAP
    assert record_frame.split(raw) == record_frame.Record(SNAP, [], framed=False)


def test_a_timeline_reads_back_newest_first_beside_its_snapshot() -> None:
    raw = record_frame.join(SNAP, [b"second", b"", b"first"])
    assert raw[0] == record_frame.MARK
    assert record_frame.split(raw) == record_frame.Record(SNAP, [b"second", b"", b"first"], framed=True)
    assert record_frame.snapshot_of(raw) == SNAP == record_frame.snapshot_of(SNAP)
    assert unpack_snapshot(raw) == {"order_state": "Failed"}


def test_a_subject_that_is_not_polled_has_a_timeline_and_no_snapshot() -> None:
    raw = record_frame.join(None, [b"entry"])
    assert record_frame.split(raw) == record_frame.Record(None, [b"entry"], framed=True)
    assert record_frame.snapshot_of(raw) is None
    assert unpack_snapshot(raw) is None
    with pytest.raises(ValueError, match="snapshot or a timeline"):
        record_frame.join(None, [])


@pytest.mark.parametrize("cut", [1, 3, 6, len(SNAP) + 7, len(SNAP) + 11, -1])
def test_a_record_cut_short_is_refused(cut: int) -> None:
    raw = record_frame.join(SNAP, [b"an entry"])
    with pytest.raises(ValueError, match="cut short"):
        record_frame.split(raw[:cut])
    if len(raw[:cut]) < len(SNAP) + 5:  # the snapshot itself is cut
        with pytest.raises(ValueError, match="cut short"):
            record_frame.snapshot_of(raw[:cut])
