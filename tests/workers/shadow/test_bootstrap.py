"""The stratified Poisson bootstrap agrees with the textbook bootstrap."""

import numpy as np
import pytest

from workers.shadow import bootstrap


@pytest.mark.parametrize("n", [500, 5000])
def test_agrees_with_naive_bootstrap_on_skewed_fat_tailed_trades(n):
    rng = np.random.default_rng(n)
    a = rng.lognormal(-4, 1.0, n) - np.exp(-4 + 0.5) + 0.0008   # strongly right-skewed
    b = 0.02 * rng.standard_t(3, n) / np.sqrt(3)
    fast = bootstrap.mean_diff(a, b, 10_000, np.random.default_rng(1))
    naive = bootstrap.naive_mean_diff(a, b, 4_000, np.random.default_rng(2))
    width = naive.ci_high - naive.ci_low
    assert fast.diff == naive.diff
    assert abs(fast.ci_low - naive.ci_low) < 0.05 * width
    assert abs(fast.ci_high - naive.ci_high) < 0.05 * width
    assert abs(fast.p_superior - naive.p_superior) < 0.03
    assert fast.resamples == 10_000


def test_resample_means_have_the_bootstrap_variance():
    rng = np.random.default_rng(0)
    x = rng.exponential(0.01, 3000) - 0.01
    m = bootstrap.resample_means(x, 20_000, rng)
    assert m.mean() == pytest.approx(x.mean(), abs=3 * x.std() / np.sqrt(3000) / np.sqrt(20_000) * 3)
    assert m.std() == pytest.approx(x.std() / np.sqrt(3000), rel=0.03)


def test_identical_returns_on_every_shared_opportunity_are_no_evidence_either_way():
    same = bootstrap.paired_mean(np.zeros(800), 2_000, np.random.default_rng(0))
    assert (same.diff, same.ci_low, same.ci_high, same.p_superior) == (0.0, 0.0, 0.0, 0.5)
    rng = np.random.default_rng(1)
    better = bootstrap.paired_mean(np.where(rng.random(800) < 0.1, 0.01, 0.0), 2_000, rng)
    assert better.p_superior > 0.99  # ties among the pairs are not ties of their resampled means
