"""Metrics and tests against scipy/statsmodels and the papers' worked examples."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from workers.shadow import metrics
from workers.shadow.moments import (Moments, deflated_sharpe, expected_max_sharpe, min_track_record, paired_z, psr,
                                    sharpe_diff_z, sharpe_var, welch_z, win_rate_z)


def test_deflated_sharpe_ratio_worked_example():
    """Bailey & López de Prado (2014), numerical example: annual SR 2.5 from T=1250 daily
    returns, skewness -3, kurtosis 10, N=100 trials with annualised Sharpe variance 1/2:
    E[max SR] = 0.1132 (daily) and DSR = 0.9004."""
    sr_daily, var_daily = 2.5 / np.sqrt(250), 0.5 / 250
    assert expected_max_sharpe(100, var_daily) == pytest.approx(0.1132, abs=1e-4)
    dsr = psr(sr_daily, 1250, -3.0, 10.0, expected_max_sharpe(100, var_daily))
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_probabilistic_sharpe_ratio_is_the_deflated_one_at_its_benchmark():
    """PSR (Bailey & López de Prado 2012) evaluated at SR* = E[max SR] is the DSR of the
    example above; PSR(0) of the same track record is close to certain."""
    sr, sr0 = 2.5 / np.sqrt(250), 0.1132
    assert psr(sr, 1250, -3.0, 10.0, sr0) == pytest.approx(0.9004, abs=1e-3)
    assert psr(sr, 1250, -3.0, 10.0, 0.0) > 0.999
    # normal returns: PSR reduces to Φ(SR·√(n−1) / √(1 + SR²/2))
    assert psr(0.1, 101, 0.0, 3.0) == pytest.approx(stats.norm.cdf(0.1 * 10 / np.sqrt(1.005)))


def test_psr_coverage_by_simulation():
    """PSR(SR*) with SR* = true Sharpe is uniform: P(PSR > 0.95) ≈ 5 % under skewed returns."""
    rng = np.random.default_rng(5)
    x = rng.lognormal(0, 0.5, size=(4000, 500)) - 1.0  # mean exp(0.125) - 1, skewed
    true_sr = (np.exp(0.125) - 1) / np.sqrt((np.exp(0.25) - 1) * np.exp(0.25))
    m = Moments.of(x)
    p = stats.norm.cdf((m.sharpe - true_sr) / np.sqrt(sharpe_var(m)))
    assert abs((p > 0.95).mean() - 0.05) < 0.02


def test_deflated_sharpe_of_returns_matches_the_formula_on_their_moments():
    rng = np.random.default_rng(1)
    r = 0.001 + 0.01 * rng.standard_t(5, (3, 800))
    sr = r.mean(1) / r.std(1, ddof=1)
    g3, g4 = stats.skew(r, axis=1), stats.kurtosis(r, axis=1, fisher=False)
    sr0 = np.sqrt(0.002) * ((1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / 20)
                            + np.euler_gamma * stats.norm.ppf(1 - 1 / (20 * np.e)))
    ref = stats.norm.cdf((sr - sr0) * np.sqrt(799) / np.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr ** 2))
    assert np.allclose(deflated_sharpe(Moments.of(r), 20, 0.002), ref, rtol=1e-9)


def test_minimum_track_record_length_worked_example():
    """Bailey & López de Prado (2012), the appendix program (PSR class, MLdP 2012-05-02) on its own
    inputs: monthly excess returns with mean 1.5 and sd √12 (annualised SR 1.5), skew −0.72,
    kurtosis 5.78, benchmark SR* = 1/√12 (annualised 1.0), 95 % confidence. Its minTRL with 2, 3 and
    4 moments is 143.04, 183.53 and 200.45 months; PSR of a 59.895-month record 0.855, 0.825, 0.814."""
    sr, ref = 1.5 / np.sqrt(12), 1 / np.sqrt(12)
    assert min_track_record(sr, 0.0, 3.0, ref) == pytest.approx(143.041, abs=1e-3)
    assert min_track_record(sr, -0.72, 3.0, ref) == pytest.approx(183.529, abs=1e-3)
    assert min_track_record(sr, -0.72, 5.78, ref) == pytest.approx(200.452, abs=1e-3)
    assert psr(sr, 59.895, -0.72, 5.78, ref) == pytest.approx(0.8143, abs=1e-4)
    assert psr(sr, 59.895, 0.0, 3.0, ref) == pytest.approx(0.8552, abs=1e-4)
    # its defining property: a record exactly MinTRL long has PSR = 1 − α
    n = float(min_track_record(sr, -0.72, 5.78, ref))
    assert psr(sr, n, -0.72, 5.78, ref) == pytest.approx(0.95, abs=1e-12)
    assert min_track_record(ref, -0.72, 5.78, ref) == np.inf      # not better: no length will do


def test_minimum_track_record_length_by_simulation():
    """With MinTRL trades of a strategy whose true Sharpe is sr, the one-sided test against SR* rejects
    about half the time (the estimate lands above or below its mean); with 4×MinTRL the expected z
    doubles to 2·z₀.₉₅, so it rejects Φ(z₀.₉₅) = 95 % of the time."""
    rng = np.random.default_rng(8)
    sr_true, ref = 0.15, 0.05
    n = int(np.ceil(float(min_track_record(sr_true, 0.0, 3.0, ref))))
    for length, lo, hi in ((n, 0.45, 0.55), (4 * n, 0.935, 0.965)):
        x = sr_true + rng.standard_normal((4000, length))
        m = Moments.of(x)
        hits = (psr(m.sharpe, m.n, m.skew, m.kurtosis, ref) > 0.95).mean()
        assert lo <= hits <= hi, (length, hits)


def test_summary_and_tests_match_reference_implementations():
    rng = np.random.default_rng(2)
    a, b = 0.001 + 0.02 * rng.standard_t(4, 700), 0.02 * rng.standard_t(4, 900)
    s = metrics.summarize(a)
    assert s.skew == pytest.approx(stats.skew(a)) and s.kurtosis == pytest.approx(stats.kurtosis(a, fisher=False))
    assert s.win_rate == pytest.approx((a > 0).mean()) and s.sharpe == pytest.approx(a.mean() / a.std(ddof=1))
    ma, mb = Moments.of(a), Moments.of(b)
    assert float(welch_z(ma, mb)) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).statistic)
    ref, _ = proportions_ztest([(a > 0).sum(), (b > 0).sum()], [a.size, b.size])
    assert float(win_rate_z(ma, mb)) == pytest.approx(ref)
    # Sharpe difference of independent streams: the two Mertens variances (Lo 2002 for normal returns) add
    var = sum((1 - stats.skew(x) * x.mean() / x.std(ddof=1)
               + (stats.kurtosis(x, fisher=False) - 1) / 4 * (x.mean() / x.std(ddof=1)) ** 2) / (x.size - 1)
              for x in (a, b))
    zs = (a.mean() / a.std(ddof=1) - b.mean() / b.std(ddof=1)) / np.sqrt(var)
    assert float(sharpe_diff_z(ma, mb)) == pytest.approx(zs, rel=1e-9)
    d = a[:700] - b[:700]
    assert float(paired_z(Moments.of(d))) == pytest.approx(stats.ttest_rel(a[:700], b[:700]).statistic)


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
