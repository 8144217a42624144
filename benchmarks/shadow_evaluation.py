"""One full champion/challenger evaluation vs the textbook bootstrap.

    python benchmarks/shadow_evaluation.py [--n 5000] [--resamples 10000] [--repeat 20]

In the same process and on the same two trade series (n trades per model,
fat-tailed Student-t returns), times:

- full evaluation (``workers.shadow.evaluation.evaluate``): five primary and three
  secondary criteria, incl. the stratified Poisson bootstrap with ``--resamples``
  resamples, the noise-aware drawdown test, Welch, Sharpe difference, two
  proportions, PSR/DSR and the alpha-spending boundary (cached per process);
- baseline: the naive numpy bootstrap of the mean difference alone
  (``x[rng.integers(0, n, (B, n))].mean(1)``, chunked), with the same resamples.

Prints median wall times, the ratio baseline / full evaluation and how closely the
two bootstraps agree. Goal: full evaluation <= 20 ms (the seed asked < 200 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.shadow import bootstrap  # noqa: E402
from workers.shadow.evaluation import EvalConfig, evaluate  # noqa: E402
from workers.shadow.simulation import trade_returns  # noqa: E402


CPU: dict[str, float] = {}


def timed(fn, repeat: int, label: str = "") -> tuple[float, object]:
    """Median wall time (ms); the median CPU time of this process is kept in CPU[label] (on a shared
    machine the wall time mostly measures the neighbours, the CPU time does not)."""
    out, times, cpu = None, [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU[label] = statistics.median(cpu) * 1000
    return statistics.median(times) * 1000, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(42)
    ch, champ = trade_returns(rng, (args.n,), mean=0.0008), trade_returns(rng, (args.n,))
    cfg = EvalConfig(min_trades=min(500, args.n), horizon=args.n, n_bootstrap=args.resamples)
    t0 = time.perf_counter()
    cfg.bounds()
    print(f"boundaries ({cfg.looks.size} looks, once per process): {1000 * (time.perf_counter() - t0):.0f} ms")
    evaluate(ch, champ, cfg, rng)  # warm-up
    full_ms, ev = timed(lambda: evaluate(ch, champ, cfg, rng), args.repeat, "full")
    fast_ms, fast = timed(lambda: bootstrap.mean_diff(ch, champ, args.resamples, rng), args.repeat, "fast")
    naive_ms, naive = timed(lambda: bootstrap.naive_mean_diff(ch, champ, args.resamples, rng),
                            max(1, args.repeat // 10), "naive")
    print(f"n = {args.n} trades per model, {args.resamples} resamples, decision {ev.decision}, score {ev.score}")
    print(f"full evaluation (8 criteria incl. bootstrap): {full_ms:8.1f} ms  (goal <= 20 ms)")
    print(f"stratified Poisson bootstrap alone:          {fast_ms:8.1f} ms")
    print(f"baseline naive numpy bootstrap alone:        {naive_ms:8.1f} ms")
    print(f"ratio naive bootstrap / full evaluation:     {naive_ms / full_ms:8.1f}x")
    print(f"ratio naive bootstrap / stratified bootstrap:{naive_ms / fast_ms:8.1f}x")
    print(f"CPU time (this process, median): evaluation {CPU['full']:.1f} ms, naive bootstrap {CPU['naive']:.1f} ms")
    print(f"ratio evaluation_ms = {full_ms:.1f} (goal <= 20)")
    print(f"ratio evaluation_cpu_ms = {CPU['full']:.1f} (goal <= 20)")
    print(f"ratio naive_bootstrap_over_evaluation = {naive_ms / full_ms:.1f} (goal >= 20)")
    print(f"agreement: 95% CI fast [{fast.ci_low:+.5f}, {fast.ci_high:+.5f}] vs naive "
          f"[{naive.ci_low:+.5f}, {naive.ci_high:+.5f}]; P(better) {fast.p_superior:.3f} vs {naive.p_superior:.3f}")


if __name__ == "__main__":
    main()
