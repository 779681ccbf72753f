"""Timing shared by the benchmarks."""
from __future__ import annotations

import statistics
import time


def median_ms(fn, runs: int = 5) -> float:
    """Median wall time of fn() in ms over `runs` calls, after one warm-up call (the first call
    pays caches and the first disk reads; we measure the steady state)."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)
