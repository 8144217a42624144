"""Vectorised performance metrics and two-sample tests on per-trade returns.

Every function takes plain numpy arrays of per-trade returns (fractions, 0.01 =
+1 %) so it can be tested and benchmarked without a database or Celery.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

EULER_GAMMA = 0.5772156649015329


@dataclass(frozen=True)
class Summary:
    n: int
    win_rate: float
    mean: float
    std: float
    sharpe: float          # per trade (not annualised)
    sortino: float
    max_drawdown: float    # of the compounded equity curve, as a positive fraction
    profit_factor: float
    skew: float
    kurtosis: float        # Pearson (3 for a normal distribution)

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in self.__dict__.items()}


def max_drawdown(returns: np.ndarray, logged: bool = False) -> np.ndarray | float:
    """Largest peak-to-trough fall of the compounded equity curve (last axis = trades);
    ``logged``: the input already holds log(1 + r)."""
    log_eq = np.cumsum(returns if logged else np.log1p(returns), axis=-1)
    peak = np.maximum.accumulate(np.maximum(log_eq, 0.0), axis=-1)
    return 1.0 - np.exp(-(peak - log_eq).max(axis=-1))


def summarize(r: np.ndarray) -> Summary:
    r = np.asarray(r, dtype=float)
    n = r.size
    if n < 2:
        raise ValueError(f"returns: need at least 2 trades, got {n}")
    mean, std = r.mean(), r.std(ddof=1)
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    gains, losses = r[r > 0].sum(), -r[r < 0].sum()
    return Summary(
        n=n, win_rate=float((r > 0).mean()), mean=float(mean), std=float(std),
        sharpe=float(mean / std) if std > 0 else float("nan"),
        sortino=float(mean / downside) if downside > 0 else float("inf"),
        max_drawdown=float(max_drawdown(r)),
        profit_factor=float(gains / losses) if losses > 0 else float("inf"),
        skew=float(_skew(r, mean)), kurtosis=float(_kurt(r, mean)))


def _skew(r: np.ndarray, mean: float) -> float:
    d = r - mean
    return float(np.mean(d ** 3) / max(np.mean(d ** 2), 1e-300) ** 1.5)


def _kurt(r: np.ndarray, mean: float) -> float:
    d2 = (r - mean) ** 2
    return float(np.mean(d2 ** 2) / max(np.mean(d2), 1e-300) ** 2)


def welch_z(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Welch's t for mean(a) − mean(b): (t, degrees of freedom, one-sided p for a > b)."""
    res = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    return float(res.statistic), float(df), float(res.pvalue)


def sharpe_variance(sr: float, n: int, skew: float, kurt: float) -> float:
    """Asymptotic variance of the per-trade Sharpe estimate under non-normal iid returns
    (Mertens 2002; the denominator of PSR, Bailey & López de Prado 2012)."""
    return (1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr ** 2) / (n - 1)


def sharpe_difference(a: Summary, b: Summary) -> tuple[float, float]:
    """z and one-sided p of SR_a − SR_b for two independent trade streams.

    Jobson–Korkie/Memmel need paired returns over the same periods; trades of two
    models are not paired, so the two Mertens variances simply add.
    """
    var = sharpe_variance(a.sharpe, a.n, a.skew, a.kurtosis) + sharpe_variance(b.sharpe, b.n, b.skew, b.kurtosis)
    z = (a.sharpe - b.sharpe) / np.sqrt(var)
    return float(z), float(stats.norm.sf(z))


def two_proportion(wins_a: int, n_a: int, wins_b: int, n_b: int) -> tuple[float, float]:
    """Pooled two-proportion z of p_a − p_b and its one-sided p (a > b)."""
    p = (wins_a + wins_b) / (n_a + n_b)
    se = np.sqrt(p * (1 - p) * (1 / n_a + 1 / n_b))
    z = (wins_a / n_a - wins_b / n_b) / se if se > 0 else 0.0
    return float(z), float(stats.norm.sf(z))


def psr(sr: float, n: int, skew: float, kurt: float, sr_star: float = 0.0) -> float:
    """Probabilistic Sharpe Ratio: P(true SR > sr_star) (Bailey & López de Prado 2012)."""
    return float(stats.norm.cdf((sr - sr_star) / np.sqrt(sharpe_variance(sr, n, skew, kurt))))


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """E[max SR] of ``n_trials`` independent zero-skill trials (False Strategy Theorem)."""
    if n_trials <= 1:
        return 0.0
    return float(np.sqrt(sr_variance) * ((1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n_trials)
                                         + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n_trials * np.e))))


def dsr(sr: float, n: int, skew: float, kurt: float, n_trials: int, sr_variance: float) -> float:
    """Deflated Sharpe Ratio: PSR against the expected maximum Sharpe of the trials
    (Bailey & López de Prado 2014)."""
    return psr(sr, n, skew, kurt, expected_max_sharpe(n_trials, sr_variance))


def drawdown_test(a: np.ndarray, b: np.ndarray, tolerance: float, alpha: float, rng: np.random.Generator,
                  paths: int = 24) -> dict:
    """Is a's drawdown *significantly* worse than ``tolerance`` × b's?

    The realised MDD of one path is mostly the luck of the trade order: two
    identical models break a raw "MDD_a ≤ 1.2·MDD_b" gate about a third of the
    time. Here the noise of log(MDD) is measured by bootstrap paths of each model
    and the challenger fails only if log(MDD_a/MDD_b) exceeds log(tolerance) by
    more than z_{1−α} standard errors.
    """
    obs_a, obs_b = float(max_drawdown(a)), float(max_drawdown(b))
    sims = []
    for x in (a, b):
        idx = rng.integers(0, x.size, size=(paths, x.size), dtype=np.int32)
        sims.append(np.log(np.maximum(max_drawdown(np.log1p(x).astype(np.float32)[idx], logged=True), 1e-12)))
    se = float(np.sqrt(sims[0].var(ddof=1) + sims[1].var(ddof=1)))
    excess = np.log(max(obs_a, 1e-12)) - np.log(max(obs_b, 1e-12)) - np.log(tolerance)
    z = excess / se if se > 0 else (np.inf if excess > 0 else -np.inf)
    return {"mdd_challenger": obs_a, "mdd_champion": obs_b, "ratio": obs_a / obs_b if obs_b > 0 else None,
            "z": float(z), "worse": bool(z > stats.norm.ppf(1 - alpha))}
