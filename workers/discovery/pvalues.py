"""The politician scan's p-values through ``scipy.special``, the same ufuncs ``scipy.stats`` calls.

Importing ``scipy.stats`` costs a worker process seconds at its first task (every
distribution class is built at import); ``scipy.special`` is a fraction of that. Each
function is what the ``scipy.stats`` call it replaces computes for these arguments,
value for value (tests/workers/discovery/test_pvalues.py compares them bit for bit on many
inputs), so the findings do not change.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special
from scipy.special import _ufuncs


def t_sf(x: float, dof: float) -> float:
    """``scipy.stats.t.sf(x, dof)``: t's ``_sf`` is ``stdtr(df, -x)``."""
    return float(special.stdtr(dof, -x))


def t_isf(q: float, dof: float) -> float:
    """``scipy.stats.t.isf(q, dof)`` for 0 < q < 1: t's ``_isf`` is ``-stdtrit(df, q)``."""
    return float(-special.stdtrit(dof, q))


def binom_sf(k: int, n: int, p: float) -> float:
    """``scipy.stats.binom.sf(k, n, p)`` for 0 <= k < n, 0 <= p <= 1: binom's ``_sf`` is the boost
    ufunc ``_binom_sf(floor(k), n, p)`` (scipy.special keeps it; bdtrc is a different algorithm)."""
    return float(_ufuncs._binom_sf(float(math.floor(k)), float(n), float(p)))


def chisquare(counts: np.ndarray) -> tuple[float, float]:
    """``scipy.stats.chisquare(counts)`` (equal expected frequencies) of a 1-D array of counts:
    (statistic, p) as Pearson's terms summed, p = ``chdtrc(k - 1, statistic)``."""
    f_obs = np.asarray(counts, dtype=np.float64)
    f_exp = f_obs.mean(keepdims=True)
    stat = ((f_obs - f_exp) ** 2 / f_exp).sum()
    return float(stat), float(special.chdtrc(np.float64(len(f_obs) - 1), stat))
