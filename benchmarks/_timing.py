"""Timing shared by the benchmark scripts: medians of calls timed alternately.

Not a benchmark itself. Timing candidates alternately (A, B, A, B, ...) rather
than one after the other makes them share the same machine load, which is what
a ratio between them needs on a busy machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

__all__ = ("seconds", "alternating_medians")


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternating_medians(fns: Mapping[str, Callable[[], object]], repeats: int, *,
                        warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, timed in turn ``repeats`` times after ``warmup`` calls."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(seconds(fn))
    return {name: statistics.median(values) for name, values in times.items()}
