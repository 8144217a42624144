"""Power of the promotion decision: effect × trades × pairing correlation, by simulation (issue 15 item 5).

    python benchmarks/shadow_power.py [--runs 1000] [--seed 7] [--markdown]

A challenger better than the champion by an annual Sharpe of 0.1 … 1.0 (one trade a day,
252 a year: per-trade effect = annual / √252), both trading side by side from the same
start, through the production decision (comparison.at_looks → evaluation.gate/decide,
all primary criteria but drawdown) at the real schedule. Unpaired: independent trades;
paired: both act on the same opportunities with returns correlated ρ. Each cell is the
share of runs promoted by 1,000 / 2,500 / 5,000 trades. The champion earns 0.05 % a
trade at 2 % volatility (annual Sharpe 0.40).

Baseline named in the same run: the unpaired test's power at +0.3 (issue 15: 26 % by
5,000 trades before pairing existed); goal: pairing at ρ ≥ 0.8 at least doubles it.
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
from workers.shadow.evaluation import EvalConfig  # noqa: E402

EFFECTS = (0.1, 0.3, 0.5, 1.0)                      # annual Sharpe improvement
PAIRING = (None, 0.5, 0.8, 0.9, 0.95)               # None: unpaired
BY = (1000, 2500, 5000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--markdown", action="store_true", help="Print the table for docs/shadow.md.")
    args = ap.parse_args()
    cfg = EvalConfig()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    table: dict[tuple, list[float]] = {}
    for effect in EFFECTS:
        for rho in PAIRING:
            rate, when = sim.promotion_runs(cfg, args.runs, rng, effect=effect / np.sqrt(252),
                                            paired=rho is not None, rho=rho or 0.0)
            table[effect, rho] = [float((when <= n).sum()) / args.runs for n in BY]
    took = time.perf_counter() - t0
    head = "| annual Sharpe gain | pairing | " + " | ".join(f"by {n:,}" for n in BY) + " |"
    print(f"{args.runs} runs per cell, {took:.0f} s; share of runs promoted by N trades (95 % CI ±"
          f"{196 * np.sqrt(0.25 / args.runs):.0f} points at most)")
    print(head)
    print("|" + "---|" * (2 + len(BY)))
    for (effect, rho), shares in table.items():
        pairing = "unpaired" if rho is None else f"paired, ρ = {rho}"
        print(f"| +{effect} | {pairing} | " + " | ".join(f"{100 * s:.0f} %" for s in shares) + " |")
    base = table[0.3, None][-1]
    paired = table[0.3, 0.8][-1]
    print(f"ratio paired_rho08_over_unpaired_power_at_0.3 = {paired / max(base, 1e-9):.2f} (goal >= 2)")


if __name__ == "__main__":
    main()
