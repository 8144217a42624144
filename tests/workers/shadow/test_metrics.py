"""Metrics and tests against scipy/statsmodels and the papers' worked examples."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from workers.shadow import metrics
from workers.shadow.moments import Moments, deflated_sharpe, sharpe_diff_z, sharpe_var, welch_z, win_rate_z


def test_deflated_sharpe_ratio_worked_example():
    """Bailey & López de Prado (2014), numerical example: annual SR 2.5 from T=1250 daily
    returns, skewness -3, kurtosis 10, N=100 trials with annualised Sharpe variance 1/2:
    E[max SR] = 0.1132 (daily) and DSR = 0.9004."""
    sr_daily, var_daily = 2.5 / np.sqrt(250), 0.5 / 250
    assert metrics.expected_max_sharpe(100, var_daily) == pytest.approx(0.1132, abs=1e-4)
    assert metrics.dsr(sr_daily, 1250, -3.0, 10.0, 100, var_daily) == pytest.approx(0.9004, abs=5e-4)


def test_probabilistic_sharpe_ratio_is_the_deflated_one_at_its_benchmark():
    """PSR (Bailey & López de Prado 2012) evaluated at SR* = E[max SR] is the DSR of the
    example above; PSR(0) of the same track record is close to certain."""
    sr, sr0 = 2.5 / np.sqrt(250), 0.1132
    assert metrics.psr(sr, 1250, -3.0, 10.0, sr0) == pytest.approx(0.9004, abs=1e-3)
    assert metrics.psr(sr, 1250, -3.0, 10.0, 0.0) > 0.999
    # normal returns: PSR reduces to Φ(SR·√(n−1) / √(1 + SR²/2))
    assert metrics.psr(0.1, 101, 0.0, 3.0) == pytest.approx(stats.norm.cdf(0.1 * 10 / np.sqrt(1.005)))


def test_psr_coverage_by_simulation():
    """PSR(SR*) with SR* = true Sharpe is uniform: P(PSR > 0.95) ≈ 5 % under skewed returns."""
    rng = np.random.default_rng(5)
    x = rng.lognormal(0, 0.5, size=(4000, 500)) - 1.0  # mean exp(0.125) - 1, skewed
    true_sr = (np.exp(0.125) - 1) / np.sqrt((np.exp(0.25) - 1) * np.exp(0.25))
    m = Moments.of(x)
    p = stats.norm.cdf((m.sharpe - true_sr) / np.sqrt(sharpe_var(m)))
    assert abs((p > 0.95).mean() - 0.05) < 0.02


def test_deflated_sharpe_vectorised_matches_scalar():
    rng = np.random.default_rng(1)
    r = 0.001 + 0.01 * rng.standard_t(5, 800)
    s = metrics.summarize(r)
    assert float(deflated_sharpe(Moments.of(r), 20, 0.002)) == pytest.approx(
        metrics.dsr(s.sharpe, s.n, s.skew, s.kurtosis, 20, 0.002), rel=1e-9)


def test_summary_and_tests_match_reference_implementations():
    rng = np.random.default_rng(2)
    a, b = 0.001 + 0.02 * rng.standard_t(4, 700), 0.02 * rng.standard_t(4, 900)
    s = metrics.summarize(a)
    assert s.skew == pytest.approx(stats.skew(a)) and s.kurtosis == pytest.approx(stats.kurtosis(a, fisher=False))
    assert s.win_rate == pytest.approx((a > 0).mean()) and s.sharpe == pytest.approx(a.mean() / a.std(ddof=1))
    t, _, p = metrics.welch_z(a, b)
    assert float(welch_z(Moments.of(a), Moments.of(b))) == pytest.approx(t)
    assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    z, _ = metrics.two_proportion(int((a > 0).sum()), a.size, int((b > 0).sum()), b.size)
    ref, _ = proportions_ztest([(a > 0).sum(), (b > 0).sum()], [a.size, b.size])
    assert z == pytest.approx(ref) == pytest.approx(float(win_rate_z(Moments.of(a), Moments.of(b))))
    zs, _ = metrics.sharpe_difference(metrics.summarize(a), metrics.summarize(b))
    assert zs == pytest.approx(float(sharpe_diff_z(Moments.of(a), Moments.of(b))), rel=1e-6)


def test_max_drawdown_of_a_known_path():
    # +10 %, -20 %, -10 %, +50 %: peak 1.1, trough 1.1*0.8*0.9 = 0.792 → MDD 28 %
    assert metrics.max_drawdown(np.array([0.1, -0.2, -0.1, 0.5])) == pytest.approx(0.28)
    assert metrics.max_drawdown(np.array([0.01, 0.02])) == pytest.approx(0.0)


def test_noise_aware_drawdown_rarely_rejects_an_identical_challenger():
    """The raw 1.2x gate rejects about a third of identical challengers; the test ≤ alpha-ish."""
    rng = np.random.default_rng(9)
    raw = tested = 0
    runs = 150
    for _ in range(runs):
        a, b = (0.0005 + 0.02 * rng.standard_t(4, (2, 1000)) / np.sqrt(2))
        res = metrics.drawdown_test(a, b, 1.2, 0.05, rng)
        raw += res["ratio"] > 1.2
        tested += res["worse"]
    assert 0.2 < raw / runs < 0.45
    assert tested / runs <= 0.05


def test_noise_aware_drawdown_catches_a_much_deeper_drawdown():
    rng = np.random.default_rng(4)
    a = 0.0 + 0.06 * rng.standard_normal(2000)   # triple volatility, no extra return
    b = 0.0005 + 0.02 * rng.standard_normal(2000)
    assert metrics.drawdown_test(a, b, 1.2, 0.05, rng)["worse"]


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="returns"):
        metrics.summarize(np.array([0.1]))
