"""The scan's p-values (workers.discovery.pvalues) are the scipy.stats calls they replace, bit for bit,
and a politician's scan no longer imports scipy.stats (seconds at a worker's first task)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from scipy import stats

from workers.discovery import pvalues


def same_bits(ours: list[float], theirs: list[float]) -> bool:
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return a.shape == b.shape and bool((a.view(np.int64) == b.view(np.int64)).all())


def test_t_sf_and_isf_are_scipy_stats_bit_for_bit():
    rng = np.random.default_rng(1)
    xs = np.r_[0.0, 1e-12, 0.5, 2.0, 2.6, 3.3, 7.5, 40.0, rng.exponential(3.0, 3000)]
    dofs = np.r_[118, 119, 200, 219, 248, rng.integers(1, 5000, len(xs) - 5)]
    assert same_bits([pvalues.t_sf(float(x), int(d)) for x, d in zip(xs, dofs)],
                     [stats.t.sf(float(x), int(d)) for x, d in zip(xs, dofs)])
    qs = np.r_[0.005, 0.025, 0.0005, 0.05, rng.uniform(1e-9, 0.5, 2000)]
    ds = rng.integers(1, 3000, len(qs))
    assert same_bits([pvalues.t_isf(float(q), int(d)) for q, d in zip(qs, ds)],
                     [stats.t.isf(float(q), int(d)) for q, d in zip(qs, ds)])


def test_binom_sf_is_scipy_stats_bit_for_bit():
    rng = np.random.default_rng(2)
    cases = [(0, 10, 0.0), (9, 10, 1.0), (4, 10, 0.5), (0, 1, 0.3), (99, 100, 1e-6)]
    for _ in range(4000):
        n = int(rng.integers(1, 3000))
        k = int(rng.integers(0, n))
        p = float(rng.choice([rng.uniform(0, 1), rng.uniform(0, 0.02), 10 ** rng.uniform(-7, 0), 1 / n]))
        cases.append((k, n, p))
    assert same_bits([pvalues.binom_sf(k, n, p) for k, n, p in cases], [stats.binom.sf(k, n, p) for k, n, p in cases])


def test_chisquare_is_scipy_stats_bit_for_bit():
    rng = np.random.default_rng(3)
    arrays = [np.array([4, 4, 4, 4, 4]), np.array([20, 0, 0, 0, 0]), np.array([1, 2, 3, 4, 10])]
    arrays += [np.bincount(rng.integers(0, 5, int(rng.integers(20, 3000))) if i % 2 else
                           rng.choice(5, int(rng.integers(20, 800)), p=rng.dirichlet(np.ones(5))), minlength=5)
               for i in range(1500)]
    ours = [pvalues.chisquare(a) for a in arrays]
    theirs = [stats.chisquare(a) for a in arrays]
    assert same_bits([o[0] for o in ours], [t[0] for t in theirs])
    assert same_bits([o[1] for o in ours], [t[1] for t in theirs])


def test_a_politician_scan_does_not_import_scipy_stats():
    code = ("import sys; import workers.discovery.tasks; from workers.discovery import scan; "
            "print(sorted(m for m in sys.modules if m.startswith('scipy.stats') or m in ('statsmodels', 'networkx')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
