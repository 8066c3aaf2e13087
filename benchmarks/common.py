"""Shared helpers for benchmarks: repeated timing with medians (the machines are shared and noisy)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def rate(fn: Callable[[], int], *, repeats: int = 7, min_seconds: float = 0.3) -> tuple[float, list[float]]:
    """Run ``fn`` (which returns how many items it processed) ``repeats`` times; median items/s and all samples."""
    samples = []
    for _ in range(repeats):
        n = 0
        start = time.perf_counter()
        while True:
            n += fn()
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        samples.append(n / elapsed)
    return statistics.median(samples), samples


def interleaved(fns: dict[str, Callable[[], int]], *, rounds: int = 7, min_seconds: float = 0.3) -> dict[str, float]:
    """Median rate of each function, measured in alternating rounds so load spikes hit all alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n = 0
            start = time.perf_counter()
            while True:
                n += fn()
                elapsed = time.perf_counter() - start
                if elapsed >= min_seconds:
                    break
            samples[name].append(n / elapsed)
    return {name: statistics.median(values) for name, values in samples.items()}
