"""The network step's OLS with Newey–West errors and Benjamini–Hochberg q-values
(workers.discovery.regress) are the statsmodels calls they replace, bit for bit, and the
network step no longer imports statsmodels (about a second at a worker's first task)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from workers.discovery import regress


def same_bits(ours, theirs) -> bool:
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return a.shape == b.shape and bool((a.view(np.int64) == b.view(np.int64)).all())


def test_ols_hac_is_statsmodels_bit_for_bit():
    rng = np.random.default_rng(3)
    for i in range(60):
        n = int(rng.integers(30, 2500))
        m = pd.Series(rng.normal(0, rng.uniform(0.002, 0.03), n), index=pd.date_range("2012-01-03", periods=n))
        noise = rng.standard_t(3, n) * rng.uniform(0.001, 0.02)
        p = rng.normal(0, 0.001) + rng.uniform(0.5, 1.5) * m + noise
        if i % 7 == 0:
            p = p.round(4)  # ties and exact decimals
        lags = int(rng.integers(0, 12)) if i % 3 else 5
        fit = sm.OLS(p, sm.add_constant(m)).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
        design = np.asfortranarray(np.column_stack([np.ones(n), m.to_numpy()]))
        ours = regress.ols_hac(p.to_numpy(), design, lags)
        for name in ("params", "bse", "tvalues", "pvalues"):
            assert same_bits(getattr(ours, name), np.asarray(getattr(fit, name))), (i, name)


def test_fdr_bh_is_multipletests_bit_for_bit():
    rng = np.random.default_rng(4)
    cases = [np.array([0.01]), np.array([1.0, 1.0, 0.5]), np.array([0.004975, 0.004975, 0.5, 1.0])]
    cases += [(1 + rng.integers(0, 201, int(rng.integers(1, 4000)))) / 201.0 for _ in range(200)]
    cases += [rng.uniform(0, 1, int(rng.integers(1, 500))) ** 3 for _ in range(200)]
    for p in cases:
        assert same_bits(regress.fdr_bh(p), multipletests(p, method="fdr_bh")[1])


def test_the_network_step_does_not_import_statsmodels():
    code = ("import sys; from workers.discovery import experiment, network, scan; "
            "print(sorted(m for m in sys.modules if m.startswith(('statsmodels', 'scipy.stats'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
