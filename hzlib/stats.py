"""Uncertainty shared by every chapter: bootstrap confidence intervals (scipy does the resampling)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats


def mean_ci(values: Sequence[float], *, level: float = 0.95, n_resamples: int = 2000,
            seed: int = 0) -> tuple[float, float, float]:
    """(mean, lower, upper): the mean of ``values`` (NaNs dropped) and its percentile-bootstrap
    interval at ``level``, seeded. Fewer than two values, or all equal, give a zero-width interval;
    no values give NaNs."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return (float("nan"),) * 3
    m = float(v.mean())
    if len(v) < 2 or np.ptp(v) == 0:
        return m, m, m
    ci = stats.bootstrap((v,), np.mean, confidence_level=level, n_resamples=n_resamples, method="percentile",
                         vectorized=True, random_state=np.random.default_rng(seed)).confidence_interval
    return m, float(ci.low), float(ci.high)
