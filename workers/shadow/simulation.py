"""Monte Carlo proofs of the decision rules, vectorised over runs (no database).

- ``promotion_runs``: simulated champion and challenger trading side by side — the
  champion optionally with an established history before the challenger arrives,
  optionally on the same opportunities with correlated returns (paired) — fed to
  the production decision: ``comparison.at_looks`` (what a look compares),
  ``evaluation.gate`` and ``evaluation.decide``, at the real schedule (looks at
  SHADOW_MIN_TRADES, +SHADOW_CHECK_INTERVAL, … SHADOW_MAX_TRADES) with the real
  alpha-spending boundaries. The drawdown criterion (bootstrap paths per look) is
  left out; it can only withhold approval, so the simulated rate is an upper bound.
  ``effect=0``: the false promotion rate; ``effect>0``: power and trades to promotion.
- ``rollback_runs``: the rollback rule on an equal and on a degraded new champion,
  next to the seed's literal rule.

Trade returns are Student-t (4 d.o.f.: fat tails, as trade P&L has) so the
proofs do not lean on normality; trade times are Poisson, holding times random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from . import rollback as rb
from .comparison import Trades, at_looks
from .evaluation import APPROVED, PENDING, EvalConfig, decide, gate
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
    return mean + vol * _noise(rng, shape)


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_t(4, size=shape) / np.sqrt(2.0)        # unit variance


def _timed(rng: np.random.Generator, ret: np.ndarray, opened: np.ndarray, codes: np.ndarray | None) -> Trades:
    """Trades with random holding times, in closing order (as the registry returns them)."""
    closed = opened + rng.uniform(0.05, 2.0, size=opened.shape)
    order = np.argsort(closed, axis=-1, kind="stable")
    take = lambda a: np.take_along_axis(a, order, axis=-1)  # noqa: E731
    return Trades(take(ret), take(opened), take(closed), None if codes is None else take(codes))


def market(rng: np.random.Generator, runs: int, n: int, *, history: int = 0, paired: bool = False,
           rho: float = 0.0, effect: float = 0.0, mean: float = 0.0005, vol: float = 0.02) -> tuple[Trades, Trades]:
    """(challenger, champion) of ``runs`` independent shadow tests, one trade per unit of time each.

    ``history``: champion trades before the challenger arrived; ``paired``: both act on the same
    opportunities, returns correlated ``rho``; ``effect``: the challenger's edge in per-trade Sharpe units.
    """
    extra = n // 5 + 50                                  # the champion keeps trading past the challenger's last
    t_ch = np.cumsum(rng.exponential(1.0, (runs, n)), axis=1)
    past = -np.cumsum(rng.exponential(1.0, (runs, history)), axis=1)[:, ::-1] - 3.0
    if paired:
        eps = _noise(rng, (runs, n + extra))
        r_cp = mean + vol * eps
        r_ch = mean + effect * vol + vol * (rho * eps[:, :n] + np.sqrt(1 - rho ** 2) * _noise(rng, (runs, n)))
        t_cp = np.concatenate([t_ch, t_ch[:, -1:] + np.cumsum(rng.exponential(1.0, (runs, extra)), axis=1)], axis=1)
        codes = np.arange(n + extra)[None, :].repeat(runs, 0)
        ch = _timed(rng, r_ch, t_ch, codes[:, :n])
        cp_codes = np.concatenate([np.full((runs, history), -1), codes], axis=1)
    else:
        r_ch = trade_returns(rng, (runs, n), mean + effect * vol, vol)
        r_cp = trade_returns(rng, (runs, n + extra), mean, vol)
        t_cp = np.cumsum(rng.exponential(1.0, (runs, n + extra)), axis=1)
        ch, cp_codes = _timed(rng, r_ch, t_ch, None), None
    r_hist = trade_returns(rng, (runs, history), mean, vol)
    champ = _timed(rng, np.concatenate([r_hist, r_cp], axis=1), np.concatenate([past, t_cp], axis=1), cp_codes)
    return ch, champ


def promotion_runs(cfg: EvalConfig, runs: int, rng: np.random.Generator, effect: float = 0.0,
                   mean: float = 0.0005, vol: float = 0.02, history: int = 0, paired: bool = False,
                   rho: float = 0.0, chunk: int = 100) -> tuple[Rate, np.ndarray]:
    """(promotion rate, trades at promotion per promoted run) through the production decision."""
    looks, bounds = cfg.looks, cfg.bounds()
    last = np.arange(looks.size) == looks.size - 1
    hits, when = 0, []
    for start in range(0, runs, chunk):
        m = min(chunk, runs - start)
        ch, champ = market(rng, m, cfg.horizon, history=history, paired=paired, rho=rho, effect=effect,
                           mean=mean, vol=vol)
        code = decide(gate(at_looks(ch, champ, looks), bounds, cfg), last)
        decided = code != PENDING
        first = np.where(decided.any(1), decided.argmax(1), looks.size - 1)   # a challenger stops there
        promoted = np.take_along_axis(code, first[:, None], 1)[:, 0] == APPROVED
        hits += int(promoted.sum())
        when.append(looks[first[promoted]])
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
