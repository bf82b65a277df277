import gc
import weakref
from collections.abc import Iterator

import pytest

from convohook.runtime.collector import SERVER_TUNING, CollectorTuning, tune_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_leave_the_collections_and_the_young_generation_grows() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    tune_collector()
    # The imported modules' objects are frozen: no collection traverses them again.
    assert gc.get_freeze_count() > 10_000
    assert gc.get_threshold() == SERVER_TUNING.thresholds
    assert SERVER_TUNING.young > 700  # CPython's default, which the benchmark found too small


@pytest.mark.usefixtures("restored_collector")
def test_cycles_made_after_start_up_are_still_collected_automatically() -> None:
    tune_collector(CollectorTuning(young=100, middle=1, old=1))

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    # No gc.collect(): allocating containers past the thresholds must collect the cycle.
    kept = [[i] for i in range(1_000)]
    assert gone() is None
    assert len(kept) == 1_000
