"""Timing shared by the benchmarks."""
from __future__ import annotations

import statistics
import time


def times_ms(fn, runs: int, warm: int = 1) -> list[float]:
    """Wall times of fn() in ms over `runs` calls, after `warm` warm-up calls (the first calls
    pay caches, the first disk reads and, over HTTP, each worker's first answer)."""
    for _ in range(warm):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def median_ms(fn, runs: int = 5) -> float:
    """Median wall time of fn() in ms (one warm-up call first: we measure the steady state)."""
    return statistics.median(times_ms(fn, runs))
