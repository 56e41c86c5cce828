"""The worker's collector settings: start-up objects frozen, the young threshold raised."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from config.settings import Settings
from worker.settings import tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_start_up_objects_are_frozen_and_the_threshold_raised(restored_gc: None) -> None:
    marker: list[int] = [1]
    gc.unfreeze()
    assert any(o is marker for o in gc.get_objects())

    tune_gc(12_345)

    assert gc.get_threshold()[0] == 12_345
    assert gc.get_freeze_count() > 0
    assert not any(o is marker for o in gc.get_objects())  # frozen: out of every collection


def test_a_threshold_below_pythons_default_is_refused() -> None:
    with pytest.raises(ValueError, match="gc_threshold"):
        Settings(worker={"gc_threshold": 10})  # type: ignore[arg-type]
