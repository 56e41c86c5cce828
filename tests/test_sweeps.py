"""store/sweeps.py: a sweep's entries and the difference of two sweeps. Pure."""

from __future__ import annotations

from store import sweeps


def enc(*rkeys: str) -> bytes:
    return sweeps.entry(rkeys).encode()


def test_entries_hold_their_rkeys_and_a_newline_in_one_makes_the_entry_json() -> None:
    odd = "a:order:x\ny"
    assert list(sweeps.members([enc("a:order:1", "a:order:2"), enc(odd, "a:order:3"), b""])) == [
        b"a:order:1", b"a:order:2", odd.encode(), b"a:order:3"]
    assert enc(odd).startswith(b"[")


def test_unlisted_is_what_the_last_sweep_listed_and_this_one_did_not() -> None:
    prev = [enc("a:o:1", "a:o:2"), enc("a:o:3", "~a:o:4", "~a:o:5")]
    cur = [enc("a:o:2", "a:o:3"), enc("a:o:5")]
    # 1 no longer listed; 4 kept before and missing again; 5 kept before and listed again
    assert sweeps.unlisted(prev, cur, "~") == ["a:o:1", "~a:o:4"]
    assert sweeps.unlisted([], cur, "~") == []


def test_a_page_listed_again_as_it_was_is_not_taken_apart_and_moved_ids_are_still_listed() -> None:
    prev = [enc("a:o:1", "a:o:2"), enc("a:o:3", "a:o:4")]
    assert sweeps.unlisted(prev, list(prev), "~") == []
    # the page boundaries moved: 3 is on the first page now, 4 is gone
    assert sweeps.unlisted(prev, [enc("a:o:1", "a:o:2", "a:o:3")], "~") == ["a:o:4"]
    assert sweeps.unlisted(prev, iter([enc("a:o:1", "a:o:2"), enc("a:o:3")]), "~") == ["a:o:4"]
