"""Statistics from running power sums, vectorised over any leading axes — the
one implementation of every test statistic the pool uses.

The promotion gate needs mean, variance, skewness, kurtosis and win count at
every look. Computed from cumulative sums of r, r², r³, r⁴ and wins they cost
O(1) per look, so the same code evaluates one challenger in the worker and
thousands of simulated challengers at 46 looks at once in ``simulation``.

Sharpe ratios here are per trade (not annualised). References: Mertens (2002)
for the variance of a Sharpe estimate under non-normal iid returns; Bailey &
López de Prado (2012) for PSR and the minimum track record length, (2014) for
the deflated Sharpe ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

EULER_GAMMA = float(np.euler_gamma)


@dataclass(frozen=True)
class Moments:
    n: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    s3: np.ndarray
    s4: np.ndarray
    wins: np.ndarray

    @classmethod
    def of(cls, r: np.ndarray) -> "Moments":
        """Moments of the whole last axis."""
        r = np.asarray(r, dtype=float)
        return cls(np.asarray(r.shape[-1], dtype=float), r.sum(-1), (r ** 2).sum(-1), (r ** 3).sum(-1),
                   (r ** 4).sum(-1), (r > 0).sum(-1).astype(float))

    @classmethod
    def at_looks(cls, r: np.ndarray, looks: np.ndarray) -> "Moments":
        """Moments of the first ``looks[k]`` trades, for each k (new last axis = looks)."""
        r = np.asarray(r, dtype=float)[..., : int(np.max(looks))]
        idx = np.asarray(looks) - 1
        r2 = r * r
        take = lambda a: np.cumsum(a, axis=-1)[..., idx]  # noqa: E731
        return cls(np.asarray(looks, dtype=float), take(r), take(r2), take(r2 * r), take(r2 * r2),
                   take((r > 0).astype(float)))

    @property
    def mean(self) -> np.ndarray:
        return self.s1 / self.n

    @property
    def var(self) -> np.ndarray:
        """Unbiased sample variance."""
        return np.maximum(self.s2 - self.s1 ** 2 / self.n, 0.0) / (self.n - 1)

    def _central(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.mean
        m2 = self.s2 / self.n - m ** 2
        m3 = self.s3 / self.n - 3 * m * self.s2 / self.n + 2 * m ** 3
        m4 = self.s4 / self.n - 4 * m * self.s3 / self.n + 6 * m ** 2 * self.s2 / self.n - 3 * m ** 4
        return np.maximum(m2, 1e-300), m3, m4

    @property
    def skew(self) -> np.ndarray:
        m2, m3, _ = self._central()
        return m3 / m2 ** 1.5

    @property
    def kurtosis(self) -> np.ndarray:
        """Pearson kurtosis (3 for normal returns)."""
        m2, _, m4 = self._central()
        return m4 / m2 ** 2

    @property
    def sharpe(self) -> np.ndarray:
        return self.mean / np.sqrt(np.maximum(self.var, 1e-300))

    @property
    def win_rate(self) -> np.ndarray:
        return self.wins / self.n


def welch_z(a: Moments, b: Moments) -> np.ndarray:
    """Welch statistic of mean(a) − mean(b); with hundreds of trades its t is a z."""
    return (a.mean - b.mean) / np.sqrt(np.maximum(a.var / a.n + b.var / b.n, 1e-300))


def paired_z(d: Moments) -> np.ndarray:
    """z of mean(d) for per-opportunity differences d = challenger − champion on the same opportunity."""
    return d.mean / np.sqrt(np.maximum(d.var / d.n, 1e-300))


def sharpe_variance(sr, n, skew, kurt):
    """Asymptotic variance of a per-trade Sharpe estimate under non-normal iid returns (Mertens 2002;
    the denominator of PSR). ``kurt`` is Pearson's (3 for normal returns)."""
    return (1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr ** 2) / (n - 1)


def sharpe_var(m: Moments) -> np.ndarray:
    return sharpe_variance(m.sharpe, m.n, m.skew, m.kurtosis)


def sharpe_diff_z(a: Moments, b: Moments) -> np.ndarray:
    """z of SR_a − SR_b for independent trade streams (Mertens variances add)."""
    return (a.sharpe - b.sharpe) / np.sqrt(np.maximum(sharpe_var(a) + sharpe_var(b), 1e-300))


def win_rate_z(a: Moments, b: Moments) -> np.ndarray:
    """Pooled two-proportion z of win_rate(a) − win_rate(b)."""
    p = (a.wins + b.wins) / (a.n + b.n)
    se = np.sqrt(np.maximum(p * (1 - p) * (1 / a.n + 1 / b.n), 1e-300))
    return (a.win_rate - b.win_rate) / se


def psr(sr, n, skew, kurt, sr_star=0.0):
    """Probabilistic Sharpe Ratio: P(true SR > sr_star) given SR estimated from n trades."""
    return stats.norm.cdf((sr - sr_star) / np.sqrt(np.maximum(sharpe_variance(sr, n, skew, kurt), 1e-300)))


def expected_max_sharpe(n_trials: int, sr_variance):
    """E[max SR] of ``n_trials`` independent zero-skill trials (False Strategy Theorem)."""
    if n_trials <= 1:
        return 0.0 * np.asarray(sr_variance)
    return np.sqrt(sr_variance) * ((1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n_trials)
                                   + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n_trials * np.e)))


def deflated_sharpe(m: Moments, n_trials: int, sr_variance: np.ndarray | float | None = None) -> np.ndarray:
    """DSR of each stream: PSR against E[max SR] of ``n_trials`` zero-skill trials.

    Without a cross-trial variance the sampling variance of a zero Sharpe, 1/(n−1),
    is used: the spread luck alone produces among trials of this length.
    """
    v = 1.0 / (m.n - 1) if sr_variance is None else sr_variance
    return psr(m.sharpe, m.n, m.skew, m.kurtosis, expected_max_sharpe(n_trials, v))


def min_track_record(sr, skew, kurt, sr_star, alpha: float = 0.05):
    """Minimum Track Record Length (Bailey & López de Prado 2012): trades needed before an observed
    per-trade Sharpe ``sr`` can be told from ``sr_star`` at confidence 1 − alpha, the return moments
    staying as observed. Infinite when sr ≤ sr_star (no length will do)."""
    sr, sr_star = np.asarray(sr, dtype=float), np.asarray(sr_star, dtype=float)
    gap = sr - sr_star
    z = stats.norm.ppf(1 - alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = 1.0 + (1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr ** 2) * (z / gap) ** 2
    return np.where(gap > 0, n, np.inf)
