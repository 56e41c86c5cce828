"""A resource's state record and its one codec (store/records.py), with plain values."""

from __future__ import annotations

import pytest

from core.state import ResourceState
from store.records import CorruptRecord, decode_state, encode_state

D = "0123456789abcdef01234567"


@pytest.mark.parametrize("stored", [
    f"{D}|0|1700000000",                           # a baseline with no fingerprint (a gone resource too)
    f"{D}|4|1700000000|lfp0123456789abcdef0123",   # a scan item: fingerprint, no terminal flag
    f"{D}|4|1700000000|lfp0123456789abcdef0123|t",
    f"{D}|4|1700000000|lfp0123456789abcdef0123|o",
    f"{D}|4|1700000000||o",                        # a terminal flag without a fingerprint
])
def test_every_form_the_store_writes_reads_back_to_the_same_string(stored: str) -> None:
    """The commit compares the stored string with the one encoded from what was read."""
    state = decode_state(stored.encode())
    assert state is not None and encode_state(state) == stored


def test_the_fields_are_named_as_stored() -> None:
    assert decode_state(f"{D}|4|1700000000|lfp|t") == ResourceState(D, 4, 1_700_000_000.0, "lfp", True)
    assert decode_state(f"{D}|4|1700000000") == ResourceState(D, 4, 1_700_000_000.0)


def test_changed_at_is_stored_to_the_second() -> None:
    assert encode_state(ResourceState(D, 1, 1_700_000_000.9)) == f"{D}|1|1700000000"


@pytest.mark.parametrize("raw", [b"garbage-without-fields", b"|1|2", f"{D}|-1|2".encode(), f"{D}|x|2".encode(),
                                 f"{D}|1|inf".encode(), b"\xff|1|2"])
def test_a_value_that_is_not_a_record_names_its_key(raw: bytes) -> None:
    with pytest.raises(CorruptRecord, match=r"sh:state\[k\]"):
        decode_state(raw, "sh:state[k]")


@pytest.mark.parametrize("raw", [f"{D}|01|1700000000", f"{D}|1|1700000000.5", f"{D}|1|1700000000|",
                                 f"{D}|1|1700000000|lfp|x"])
def test_a_value_that_would_not_be_written_back_the_same_is_not_a_record(raw: str) -> None:
    """Read as it is, it would refuse every commit: the commit compares it with its re-encoding."""
    with pytest.raises(CorruptRecord, match="as statehook writes it"):
        decode_state(raw)


def test_no_record_is_none() -> None:
    assert decode_state(None) is None and decode_state(b"") is None
