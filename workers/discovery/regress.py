"""The network step's two statsmodels calls in numpy, computed the way statsmodels computes them.

``import statsmodels.api`` (and ``statsmodels.stats.multitest``) costs the process running the
network step about a second of CPU at its first task, on the same two cores as the scans. Only two
calls were used: an OLS with Newey–West (HAC) errors for the copy-trading experiment and
Benjamini–Hochberg q-values for the co-trading pairs. Each function below is the statsmodels code
path for these arguments, step for step (OLS ``method="pinv"`` through ``pinv_extended``;
``cov_hac_simple`` with Bartlett weights and no small-sample correction, which is what
``fit(cov_type="HAC", cov_kwds={"maxlags": L})`` uses; normal p-values, as ``use_t`` is False
there; ``fdrcorrection`` for ``method="fdr_bh"``), so the results are the same floats:
tests/workers/discovery/test_regress.py compares them bit for bit with statsmodels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


def _pinv_extended(x: np.ndarray, rcond: float = 1e-15) -> np.ndarray:
    """``statsmodels.tools.tools.pinv_extended(x)[0]`` (numpy's pinv as statsmodels writes it)."""
    x = np.asarray(x).conjugate()
    u, s, vt = np.linalg.svd(x, False)
    m, n = u.shape[0], vt.shape[1]
    cutoff = rcond * np.maximum.reduce(s)
    for i in range(min(n, m)):
        s[i] = 1.0 / s[i] if s[i] > cutoff else 0.0
    return np.dot(np.transpose(vt), np.multiply(s[:, np.newaxis], np.transpose(u)))


@dataclass(frozen=True)
class OLSFit:
    params: np.ndarray
    bse: np.ndarray
    tvalues: np.ndarray
    pvalues: np.ndarray


def ols_hac(y: np.ndarray, x: np.ndarray, maxlags: int) -> OLSFit:
    """``sm.OLS(y, x).fit(cov_type="HAC", cov_kwds={"maxlags": maxlags})``: params, bse, t and (normal) p.
    ``x``: the design matrix as statsmodels holds it (``np.asarray`` of the exog frame)."""
    wendog, wexog = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    pinv_wexog = _pinv_extended(wexog)
    normalized_cov_params = np.dot(pinv_wexog, np.transpose(pinv_wexog))
    params = np.dot(pinv_wexog, wendog)
    wresid = wendog - np.dot(wexog, params)
    xu = wexog * wresid[:, None]  # sandwich_covariance._get_sandwich_arrays
    weights = 1 - np.arange(maxlags + 1) / (maxlags + 1.0)  # weights_bartlett
    s_hac = weights[0] * np.dot(xu.T, xu)  # S_hac_simple
    for lag in range(1, maxlags + 1):
        s = np.dot(xu[lag:].T, xu[:-lag])
        s_hac += weights[lag] * (s + s.T)
    cov = np.dot(np.dot(normalized_cov_params, s_hac), normalized_cov_params.T)  # _HCCM2
    with np.errstate(invalid="ignore", divide="ignore"):
        bse = np.sqrt(np.diag(cov))
        tvalues = params / bse
    pvalues = special.ndtr(-np.abs(tvalues)) * 2  # stats.norm.sf(|t|) * 2; norm's _sf is ndtr(-x)
    return OLSFit(params, bse, tvalues, pvalues)


def fdr_bh(pvals) -> np.ndarray:
    """``multipletests(pvals, method="fdr_bh")[1]``: Benjamini–Hochberg q-values, in the input's order."""
    pvals = np.asarray(pvals)
    sortind = np.argsort(pvals)
    pvals = np.take(pvals, sortind)
    ecdffactor = np.arange(1, len(pvals) + 1) / float(len(pvals))
    corrected = np.minimum.accumulate((pvals / ecdffactor)[::-1])[::-1]
    corrected[corrected > 1] = 1
    out = np.empty_like(corrected)
    out[sortind] = corrected
    return out
