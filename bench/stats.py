"""Percentiles of latencies, in milliseconds."""

from __future__ import annotations

import math
from collections.abc import Sequence

QUANTILES = {"p50": 0.50, "p99": 0.99, "p99.9": 0.999}


def percentile(ordered: Sequence[int], q: float) -> int:
    """Nearest rank of an ascending sequence: the smallest value with at least q of them at or
    below it. p99.9 of fewer than 1,000 values is simply the largest."""
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def summary_ms(values_ns: Sequence[int]) -> dict[str, float | int | None]:
    """p50, p99, p99.9, max and mean in ms (3 decimals), and how many values there were."""
    if not values_ns:
        return {"count": 0, **dict.fromkeys([*QUANTILES, "max", "mean"])}
    ordered = sorted(values_ns)
    result: dict[str, float | int | None] = {"count": len(ordered)}
    for name, q in QUANTILES.items():
        result[name] = round(percentile(ordered, q) / 1e6, 3)
    result["max"] = round(ordered[-1] / 1e6, 3)
    result["mean"] = round(sum(ordered) / len(ordered) / 1e6, 3)
    return result
