import numpy as np
import pytest

from hzlib import stats


def test_mean_ci_brackets_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(1.0, 1.0, 30), rng.normal(1.0, 1.0, 3000)
    m1, lo1, hi1 = stats.mean_ci(small)
    m2, lo2, hi2 = stats.mean_ci(large)
    assert lo1 < m1 < hi1 and lo2 < m2 < hi2 and (hi2 - lo2) < (hi1 - lo1) / 5
    assert lo2 < 1.0 < hi2


def test_mean_ci_matches_the_normal_approximation():
    v = np.random.default_rng(1).exponential(2.0, 4000)
    m, lo, hi = stats.mean_ci(v, n_resamples=4000)
    half = 1.96 * v.std(ddof=1) / np.sqrt(len(v))
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)


def test_mean_ci_is_seeded_and_drops_nans():
    v = np.r_[np.random.default_rng(2).normal(size=50), np.nan]
    assert stats.mean_ci(v, seed=3) == stats.mean_ci(v, seed=3)
    assert stats.mean_ci(v)[0] == pytest.approx(np.nanmean(v))


def test_mean_ci_degenerate_inputs():
    assert stats.mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert stats.mean_ci([5.0]) == (5.0, 5.0, 5.0)
    assert all(np.isnan(stats.mean_ci([])))
    with pytest.raises(ValueError, match="level"):
        stats.mean_ci([1.0, 2.0], level=95)
