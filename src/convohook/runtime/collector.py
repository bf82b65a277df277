"""How the long-running processes (`serve`, `worker`) set up Python's cyclic garbage collector.

Measured (docs/performance.md, 2026-11-30): with CPython's defaults (700, 10, 10) a busy
`serve` spent about a seventh of its CPU in the collector. Every in-flight request lives a few
milliseconds, while a young collection came every 700 allocations (about every millisecond at
1,300 openings/s), so request objects were promoted and the oldest generation, which also holds
the ~100,000 objects of the imported libraries, was traversed a few times a second (some 40 ms
each). Freezing what exists at start-up takes those objects out of every collection, and a
young generation of 10,000 lets request objects die young. Cycles are still collected: the
oldest generation every 1,000,000 or so allocations, about once a second when busy.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CollectorTuning:
    young: int = 10_000
    middle: int = 10
    old: int = 10

    @property
    def thresholds(self) -> tuple[int, int, int]:
        return (self.young, self.middle, self.old)


SERVER_TUNING = CollectorTuning()


def tune_collector(tuning: CollectorTuning = SERVER_TUNING) -> None:
    """Call once, after the imports and the app are built and before the loop starts: what
    exists then (modules, routes, templates, prepared settings) lives as long as the process."""
    # Collect first so garbage from start-up is not frozen with the rest.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*tuning.thresholds)
