"""Monte Carlo proofs of the decision rules, vectorised over runs (no database).

- ``aa``: identical champion and challenger through the real evaluation schedule
  (looks at SHADOW_MIN_TRADES, +SHADOW_CHECK_INTERVAL, … SHADOW_MAX_TRADES), the
  real alpha-spending boundaries and the real moment-based primary criteria. The
  drawdown criterion (bootstrap paths) is left out of the simulation; it can only
  withhold approval, so the simulated rate is an upper bound of the real one.
- ``effect``: the same with a better challenger: power and trades to promotion.
- ``rollback``: the rollback rule on an equal and on a degraded new champion,
  next to the seed's literal rule.

Trade returns are Student-t (4 d.o.f.: fat tails, as trade P&L has) so the
proofs do not lean on normality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from . import rollback as rb
from .evaluation import EvalConfig, gate
from .moments import Moments


@dataclass(frozen=True)
class Rate:
    hits: int
    runs: int

    @property
    def rate(self) -> float:
        return self.hits / self.runs

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """Wilson score interval."""
        z = stats.norm.ppf(0.5 + level / 2)
        p, n = self.rate, self.runs
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    def line(self, label: str) -> str:
        lo, hi = self.ci()
        return f"{label}: {self.rate:.1%} (95% CI {100 * lo:.1f}–{100 * hi:.1f}%, {self.runs} runs)"


def trade_returns(rng: np.random.Generator, shape: tuple[int, ...], mean: float = 0.0005,
                  vol: float = 0.02) -> np.ndarray:
    """Fat-tailed per-trade returns with the given mean and standard deviation."""
    return mean + vol * rng.standard_t(4, size=shape) / np.sqrt(2.0)


def promotion_runs(cfg: EvalConfig, runs: int, rng: np.random.Generator, effect: float = 0.0,
                   mean: float = 0.0005, vol: float = 0.02, chunk: int = 200) -> tuple[Rate, np.ndarray]:
    """(promotion rate, trades at promotion per promoted run); ``effect`` in per-trade Sharpe units."""
    looks, bounds = cfg.looks, cfg.bounds()
    hits, when = 0, []
    for start in range(0, runs, chunk):
        m = min(chunk, runs - start)
        champ = trade_returns(rng, (m, cfg.horizon), mean, vol)
        chall = trade_returns(rng, (m, cfg.horizon), mean + effect * vol, vol)
        g = gate(Moments.at_looks(chall, looks), Moments.at_looks(champ, looks), bounds, cfg.alpha)
        approved = g["superior"] & g["sharpe_ok"] & g["win_ok"] & g["dsr_ok"]
        # a challenger stops at its first APPROVED or first harm-REJECTED look
        stop_harm = np.where(g["harm"].any(1), g["harm"].argmax(1), looks.size)
        first_ok = np.where(approved.any(1), approved.argmax(1), looks.size)
        promoted = first_ok < stop_harm
        hits += int(promoted.sum())
        when.append(looks[first_ok[promoted]])
    return Rate(hits, runs), np.concatenate(when) if when else np.array([], dtype=int)


def rollback_runs(cfg: rb.RollbackConfig, runs: int, rng: np.random.Generator, win_rate: float = 0.55,
                  drop: float = 0.0, ref_trades: int = 5000, chunk: int = 500) -> dict:
    """Rollback rate of the sequential rule and of the seed rule; trades to rollback."""
    looks, bounds = cfg.looks, cfg.bounds()
    hits = seed_hits = 0
    when: list[np.ndarray] = []
    for start in range(0, runs, chunk):
        m = min(chunk, runs - start)
        # returns only matter through their sign here: ±1 % trades with the wanted win rate
        ref = np.where(rng.random((m, ref_trades)) < win_rate, 0.01, -0.01)
        new = np.where(rng.random((m, cfg.window)) < win_rate - drop, 0.01, -0.01)
        mn = Moments.at_looks(new, looks)
        mr = Moments.of(ref)
        mr = Moments(mr.n, *(getattr(mr, f)[:, None] for f in ("s1", "s2", "s3", "s4", "wins")))
        crossed = rb.decline_z(mn, mr) <= -bounds
        fired = crossed.any(1)
        hits += int(fired.sum())
        when.append(looks[crossed.argmax(1)[fired]])
        seed_hits += int(rb.seed_rule(new, ref).sum())
    w = np.concatenate(when)
    return {"sequential": Rate(hits, runs), "seed_rule": Rate(seed_hits, runs),
            "median_trades": float(np.median(w)) if w.size else None}
