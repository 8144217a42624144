"""A/A false promotion rate of the production decision, fresh and established champion (issue 15).

    python benchmarks/shadow_aa.py [--runs 20000] [--seed 2026]

Identical champion and challenger (Student-t(4) returns, Poisson trade times, random
holding times) through the functions a look runs in the worker — comparison.at_looks →
evaluation.gate → evaluation.decide — at the real schedule (46 looks, 500..5000) and
boundaries. Cases: a fresh champion (it starts trading with the challenger), an
established one (5,000 trades before the challenger arrived), and the same paired on
shared opportunities (ρ = 0.8). For contrast, the old rule — the champion's *last*
5,000 trades at each look, a sliding window — on the established champion, computed
here from the same simulated trades (it is no longer in the pool).

Prints each rate with its Wilson 95 % interval and ``ratio`` lines; goal (issue 15):
rate ≤ 5 % with the upper 95 % bound ≤ 5.5 % for the production rule.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.shadow import simulation as sim  # noqa: E402
from workers.shadow.comparison import _runs, _sorted_search  # noqa: E402
from workers.shadow.evaluation import EvalConfig  # noqa: E402
from workers.shadow.moments import Moments, welch_z  # noqa: E402


def sliding_window_rate(cfg: EvalConfig, runs: int, rng: np.random.Generator, history: int,
                        chunk: int = 100) -> sim.Rate:
    """The pre-fix rule: Welch z of the challenger's first n_k trades vs the champion's last N trades closed by t_k
    (its safety criteria left out, so this is an upper bound of that rule's rate)."""
    looks, bounds, n_window = cfg.looks, cfg.bounds(), cfg.horizon
    hits = 0
    for start in range(0, runs, chunk):
        m = min(chunk, runs - start)
        ch, champ = sim.market(rng, m, cfg.horizon, history=history)
        t = _runs(ch.closed)[:, looks - 1]
        end = _sorted_search(_runs(champ.closed), t, side="right")       # champion trades closed by t_k
        begin = np.maximum(end - n_window, 0)
        r = _runs(champ.ret)
        cum = [np.concatenate([np.zeros((m, 1)), np.cumsum(r ** p, axis=1)], axis=1) for p in (1, 2)]
        s1, s2 = (np.take_along_axis(c, end, 1) - np.take_along_axis(c, begin, 1) for c in cum)
        n = (end - begin).astype(float)
        zero = np.zeros_like(s1)
        mp = Moments(n, s1, s2, zero, zero, zero)
        mc = Moments.at_looks(_runs(ch.ret), looks)
        hits += int((welch_z(mc, mp) >= bounds).any(axis=1).sum())
    return sim.Rate(hits, runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    cfg = EvalConfig()
    rng = np.random.default_rng(args.seed)
    print(f"{args.runs} A/A runs per case, {cfg.looks.size} looks {cfg.looks[0]}..{cfg.horizon}, "
          f"{cfg.spending} spending, alpha {cfg.alpha}")
    for label, kw in (("fresh", {}), ("established", {"history": cfg.horizon}),
                      ("established_paired", {"history": cfg.horizon, "paired": True, "rho": 0.8})):
        t0 = time.perf_counter()
        rate, _ = sim.promotion_runs(cfg, args.runs, rng, **kw)
        lo, hi = rate.ci()
        print(f"{rate.line(f'false promotion, {label} champion')}  [{time.perf_counter() - t0:.0f} s]")
        print(f"ratio false_promotion_{label} = {rate.rate:.4f} (goal <= 0.05)")
        print(f"ratio false_promotion_{label}_upper95 = {hi:.4f} (goal <= 0.055)")
    old = sliding_window_rate(cfg, args.runs, rng, history=cfg.horizon)
    print(old.line("before the fix: sliding window of the champion's last 5,000 trades, established champion, "
                   "gate only"))


if __name__ == "__main__":
    main()
