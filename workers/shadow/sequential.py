"""Group-sequential boundaries by Lan–DeMets alpha spending.

Why: a challenger is evaluated every ``SHADOW_CHECK_INTERVAL`` trades. Testing
each look at a fixed alpha promotes an identical challenger far more often than
alpha (46 looks at 0.05 give roughly 25–30 %). Alpha spending allots a part of
alpha to each look, so the probability of *ever* crossing the boundary under
H0 is exactly alpha however many looks happen.

Boundaries are computed with the Armitage–McPherson–Rowe recursion (Jennison &
Turnbull 2000, ch. 19): the sub-density of the score process S_k = Z_k·sqrt(t_k)
on the continuation region is propagated look to look on a grid, and each
boundary is the root that spends exactly α(t_k) − α(t_{k−1}). The same engine
serves the promotion gate (upper boundary) and the rollback monitor (a one-sided
test in the other direction).
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from scipy import optimize, stats

_GRID = 301          # grid points of the sub-density
_SPAN = 9.0          # grid reaches this many standard deviations below the boundary


def spend(t: np.ndarray | float, alpha: float, kind: str = "obf") -> np.ndarray:
    """Cumulative alpha spent at information fraction ``t`` (Lan & DeMets 1983, one-sided).

    obf:    α(t) = 2 − 2Φ(z_{1−α/2} / √t)   — O'Brien–Fleming-like: little alpha early
    pocock: α(t) = α·ln(1 + (e − 1)t)         — Pocock-like: spends evenly, stops sooner
    """
    t = np.clip(np.asarray(t, dtype=float), 1e-12, 1.0)
    if kind == "obf":
        return 2.0 - 2.0 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t))
    if kind == "pocock":
        return alpha * np.log1p((np.e - 1.0) * t)
    raise ValueError(f"spending: unknown kind {kind!r} (obf|pocock)")


@functools.lru_cache(maxsize=64)
def _boundaries(times: tuple[float, ...], alpha: float, kind: str) -> tuple[float, ...]:
    cum = spend(np.array(times), alpha, kind)
    inc = np.diff(np.concatenate([[0.0], cum]))
    bounds: list[float] = []
    # first look: S_1 ~ N(0, t_1)
    c = float(stats.norm.isf(inc[0]))
    bounds.append(c)
    t_prev = times[0]
    hi = c * np.sqrt(t_prev)
    grid = np.linspace(hi - _SPAN * np.sqrt(t_prev), hi, _GRID)
    w = np.full(_GRID, grid[1] - grid[0])
    w[0] = w[-1] = w[0] / 2                                  # trapezoid weights
    dens = stats.norm.pdf(grid, scale=np.sqrt(t_prev))
    for k in range(1, len(times)):
        t_k = times[k]
        sd = np.sqrt(t_k - t_prev)
        mass = w * dens

        def crossing(ck: float) -> float:
            return float(mass @ stats.norm.sf((ck * np.sqrt(t_k) - grid) / sd)) - inc[k]

        if inc[k] <= 0:
            ck = np.inf
        else:
            lo_c, hi_c = -10.0, 40.0
            ck = optimize.brentq(crossing, lo_c, hi_c, xtol=1e-10) if crossing(lo_c) > 0 > crossing(hi_c) \
                else np.inf
        bounds.append(float(ck))
        top = (ck if np.isfinite(ck) else 12.0) * np.sqrt(t_k)
        new_grid = np.linspace(top - _SPAN * np.sqrt(t_k), top, _GRID)
        kernel = stats.norm.pdf((new_grid[:, None] - grid[None, :]) / sd) / sd
        dens = kernel @ mass
        grid, t_prev = new_grid, t_k
        w = np.full(_GRID, grid[1] - grid[0])
        w[0] = w[-1] = w[0] / 2
    return tuple(bounds)


def boundaries(looks: Sequence[int], horizon: int, alpha: float, kind: str = "obf") -> np.ndarray:
    """Upper z-boundaries for looks at sample sizes ``looks`` (increasing) out of ``horizon``."""
    looks = [int(n) for n in looks]
    if not looks or any(b <= a for a, b in zip(looks, looks[1:])):
        raise ValueError("looks: must be a non-empty increasing sequence")
    if looks[-1] > horizon:
        raise ValueError(f"looks: last look {looks[-1]} is beyond the horizon {horizon}")
    times = tuple(round(n / horizon, 12) for n in looks)
    return np.array(_boundaries(times, float(alpha), kind))


def schedule(min_trades: int, interval: int, horizon: int) -> np.ndarray:
    """The planned looks: min_trades, min_trades + interval, …, horizon (always included)."""
    if min_trades > horizon:
        raise ValueError(f"SHADOW_MIN_TRADES ({min_trades}) exceeds SHADOW_MAX_TRADES ({horizon})")
    looks = np.arange(min_trades, horizon + 1, interval)
    if looks[-1] != horizon:
        looks = np.append(looks, horizon)
    return looks


def look_index(n_available: int, looks: np.ndarray) -> int:
    """Index of the latest planned look reached with ``n_available`` trades (-1 before the first).

    Evaluating at the planned look (using exactly its first n_k trades) keeps the
    design exact even when a task runs late, and makes re-running a look idempotent.
    """
    return int(np.searchsorted(looks, n_available, side="right")) - 1
