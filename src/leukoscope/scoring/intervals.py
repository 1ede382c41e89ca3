"""Confidence intervals: Wilson for proportions, seeded percentile bootstrap for everything else."""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)  # the standard library's, not scipy's: a second less to start a command
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def bootstrap(
    statistic: Callable[[np.ndarray], float], n: int, resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of statistic(indices) over resamples of range(n) with replacement."""
    if n == 0:
        return 0.0, 1.0
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)])
    alpha = (1 - confidence) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def paired_difference(
    a: np.ndarray, b: np.ndarray, resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, tuple[float, float]]:
    """mean(a) - mean(b) over the same items, and its percentile bootstrap interval with each item's pair
    resampled together: what the two share (the same fields, mostly the same calls) then does not widen it."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in shape: {a.shape} and {b.shape}")
    per_item = a - b
    return float(per_item.mean()) if len(per_item) else 0.0, bootstrap(lambda i: float(per_item[i].mean()), len(per_item), resamples, seed, confidence)
