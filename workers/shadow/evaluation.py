"""Champion/challenger evaluation: five primary and three secondary criteria, a
0–100 score and a decision APPROVED / PENDING / REJECTED with every reason.

Only one criterion can *promote*: the sequential superiority test of mean trade
return against the alpha-spending boundary of the current look — Welch's z of
the challenger's first n_k trades against the champion's trades over the same
period, or, when at least SHADOW_PAIRED_MIN_SHARE of the challenger's trades
share an opportunity with a champion trade, the z of the per-opportunity
differences (``comparison``). The other primary criteria are safety checks that
can only withhold approval, so the false promotion rate of the whole rule is at
most that of the gate, i.e. at most SHADOW_ALPHA over all looks up to
SHADOW_MAX_TRADES.

Primary:  P1 sequential superiority (mean return)   P2 Sharpe not significantly lower
          P3 win rate not significantly lower        P4 drawdown within tolerance (noise-aware)
          P5 deflated Sharpe ratio ≥ 0.95 (real skill after counting every challenger tried)
Secondary (score only): S1 bootstrap P(mean better) ≥ 0.95, S2 Sortino ≥ champion's,
          S3 profit factor ≥ champion's.

``gate`` and ``decide`` are vectorised over runs × looks: the worker calls them for
one challenger at one look (through ``evaluate``), ``simulation`` for thousands of
simulated challengers at every look — the same decision either way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

from . import bootstrap, metrics
from .comparison import Looks, Trades, at_looks, pair_differences, window
from .moments import (deflated_sharpe, min_track_record, paired_z, psr, sharpe_diff_z, welch_z,
                      win_rate_z)
from .sequential import boundaries, look_index, schedule

PRIMARY_WEIGHT = 16.0     # 5 × 16 = 80
SECONDARY_WEIGHT = 20.0 / 3.0
DSR_THRESHOLD = 0.95
PENDING, APPROVED, REJECTED = 0, 1, 2
DECISIONS = ("PENDING", "APPROVED", "REJECTED")


@dataclass(frozen=True)
class EvalConfig:
    min_trades: int = 500
    interval: int = 100
    horizon: int = 5000
    alpha: float = 0.05
    spending: str = "obf"
    mdd_tolerance: float = 1.20
    n_bootstrap: int = 10_000
    paired_min_share: float = 0.8

    @classmethod
    def from_settings(cls, s) -> "EvalConfig":
        sh = s.shadow
        return cls(sh.min_trades, sh.check_interval, sh.max_trades, sh.alpha, sh.spending, sh.mdd_tolerance,
                   sh.n_bootstrap, sh.paired_min_share)

    @property
    def looks(self) -> np.ndarray:
        return schedule(self.min_trades, self.interval, self.horizon)

    def bounds(self) -> np.ndarray:
        return boundaries(self.looks, self.horizon, self.alpha, self.spending)


@dataclass(frozen=True)
class Criterion:
    name: str
    primary: bool
    passed: bool
    value: float | None
    threshold: float | None
    reason: str


@dataclass
class Evaluation:
    decision: str
    score: float
    n_trades: int
    look: int                      # index of the planned look (-1: before the first)
    boundary: float | None
    criteria: list[Criterion] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"decision": self.decision, "score": self.score, "n_trades": self.n_trades, "look": self.look,
                "boundary": self.boundary, "criteria": [asdict(c) for c in self.criteria], "metrics": self.metrics}


def gate(lk: Looks, bound: np.ndarray, cfg: EvalConfig, n_trials: int = 1) -> dict[str, np.ndarray]:
    """The moment-based primary criteria (all but drawdown) at every look of every run."""
    ch, champ = lk.challenger, lk.champion
    paired = (lk.pair_share >= cfg.paired_min_share) & (lk.paired.n >= 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(paired, paired_z(lk.paired), welch_z(ch, champ))
        crit = stats.norm.ppf(1 - cfg.alpha)
        return {
            "z": z,
            "paired": paired,
            "comparable": champ.n >= 2,
            "superior": z >= bound,
            "harm": z <= -bound,
            "sharpe_ok": sharpe_diff_z(ch, champ) > -crit,
            "win_ok": win_rate_z(ch, champ) > -crit,
            "dsr_ok": deflated_sharpe(ch, n_trials) >= DSR_THRESHOLD,
        }


def decide(g: dict[str, np.ndarray], last: np.ndarray | bool, drawdown_ok: np.ndarray | bool = True) -> np.ndarray:
    """PENDING / APPROVED / REJECTED codes: approved when every primary passes; rejected when the
    challenger is significantly worse (lower boundary) or the last look passes without approval;
    pending while the champion has fewer than two trades in the period."""
    approved = g["superior"] & g["sharpe_ok"] & g["win_ok"] & g["dsr_ok"] & drawdown_ok
    code = np.where(approved, APPROVED, np.where(g["harm"] | last, REJECTED, PENDING))
    return np.where(g["comparable"], code, PENDING)


def as_trades(x) -> Trades:
    """Plain returns → trades at regular times from 0 (both models trading side by side)."""
    if isinstance(x, Trades):
        return x
    r = np.asarray(x, dtype=float)
    t = np.arange(r.shape[-1], dtype=float)
    return Trades(r, np.broadcast_to(t, r.shape), np.broadcast_to(t + 0.5, r.shape))


def evaluate(challenger, champion, cfg: EvalConfig, rng: np.random.Generator, n_trials: int = 1) -> Evaluation:
    """Evaluate at the latest planned look reached by ``challenger`` (its first n_k trades) against the
    champion's trades over the same period (``Trades``, or plain returns taken side by side)."""
    challenger, champion = as_trades(challenger), as_trades(champion)
    looks = cfg.looks
    k = look_index(challenger.n, looks)
    if k < 0:
        return Evaluation("PENDING", 0.0, challenger.n, -1, None, [], {
            "reason": f"{challenger.n} trades < SHADOW_MIN_TRADES ({cfg.min_trades})"})
    n_k = int(looks[k])
    lk = at_looks(challenger.head(n_k), champion, looks[: k + 1])
    t_k, start = float(lk.t[-1]), float(lk.start)
    r_champ = window(champion, start, t_k)
    if r_champ.size < 2:
        return Evaluation("PENDING", 0.0, n_k, k, None, [],
                          {"reason": f"champion has {r_champ.size} trades in the challenger's shadow period"})
    ch = challenger.ret[:n_k]
    bound = float(cfg.bounds()[k])
    g = {key: v[-1] for key, v in gate(lk, cfg.bounds()[: k + 1], cfg, n_trials).items()}
    mc, mp = _at(lk.challenger, -1), _at(lk.champion, -1)
    sc, sp = metrics.summarize(ch), metrics.summarize(r_champ)
    dd = metrics.drawdown_test(ch, r_champ, cfg.mdd_tolerance, cfg.alpha, rng)
    paired = bool(g["paired"])
    d = pair_differences(challenger, champion, n_k, t_k) if paired else None
    boot = bootstrap.paired_mean(d, cfg.n_bootstrap, rng) if paired else \
        bootstrap.mean_diff(ch, r_champ, cfg.n_bootstrap, rng)
    z_sr, z_wr, dsr = float(sharpe_diff_z(mc, mp)), float(win_rate_z(mc, mp)), float(deflated_sharpe(mc, n_trials))
    crit = float(stats.norm.ppf(1 - cfg.alpha))
    z = float(g["z"])
    trl = track_record(sc, sp, cfg.alpha)
    test = (f"paired z over {d.size} shared opportunities" if paired
            else f"Welch z vs {r_champ.size} champion trades over the same period")
    c = [
        Criterion("sequential_superiority", True, bool(g["superior"]), z, bound,
                  f"{test}: {z:.2f} {'≥' if g['superior'] else '<'} boundary {bound:.2f} at look {k + 1}/"
                  f"{looks.size} ({n_k} trades, {cfg.spending} alpha spending, overall α={cfg.alpha})"),
        Criterion("sharpe_not_worse", True, bool(g["sharpe_ok"]), z_sr, -crit,
                  f"Sharpe {sc.sharpe:.3f} vs {sp.sharpe:.3f} per trade, difference z {z_sr:.2f}; "
                  + trl["reason"]),
        Criterion("win_rate_not_worse", True, bool(g["win_ok"]), z_wr, -crit,
                  f"win rate {sc.win_rate:.1%} vs {sp.win_rate:.1%}, two-proportion z {z_wr:.2f}"),
        Criterion("drawdown_within_tolerance", True, not dd["worse"], dd["z"], crit,
                  f"MDD {dd['mdd_challenger']:.1%} vs {dd['mdd_champion']:.1%} (tolerance ×{cfg.mdd_tolerance}); "
                  f"{'significantly' if dd['worse'] else 'not significantly'} beyond tolerance given its noise "
                  f"(z {dd['z']:.2f})"),
        Criterion("deflated_sharpe", True, bool(g["dsr_ok"]), dsr, DSR_THRESHOLD,
                  f"DSR {dsr:.3f} over {n_trials} trial(s)"),
        Criterion("bootstrap_superiority", False, boot.p_superior >= 1 - cfg.alpha, boot.p_superior, 1 - cfg.alpha,
                  f"{boot.resamples} {'paired ' if paired else ''}resamples: mean diff {boot.diff:+.4%} "
                  f"[{boot.ci_low:+.4%}, {boot.ci_high:+.4%}], P(better) {boot.p_superior:.3f}"),
        Criterion("sortino_not_worse", False, _ge(sc.sortino, sp.sortino), _f(sc.sortino), _f(sp.sortino),
                  f"Sortino {sc.sortino:.3f} vs {sp.sortino:.3f}"),
        Criterion("profit_factor_not_worse", False, _ge(sc.profit_factor, sp.profit_factor), _f(sc.profit_factor),
                  _f(sp.profit_factor), f"profit factor {sc.profit_factor:.2f} vs {sp.profit_factor:.2f}"),
    ]
    score = round(sum((PRIMARY_WEIGHT if x.primary else SECONDARY_WEIGHT) for x in c if x.passed), 1)
    code = int(decide(g, k == looks.size - 1, not dd["worse"]))
    decision = DECISIONS[code]
    snapshot = {"challenger": sc.as_dict(), "champion": sp.as_dict(), "bootstrap": boot.as_dict(),
                "drawdown": dd, "welch_z": float(welch_z(mc, mp)), "z": z,
                "psr": float(psr(mc.sharpe, mc.n, mc.skew, mc.kurtosis)), "dsr": dsr, "n_trials": n_trials,
                "comparison": {"mode": "paired" if paired else "unpaired", "pairs": int(_at(lk.paired, -1).n),
                               "pair_share": float(lk.pair_share[-1]), "champion_trades": int(r_champ.size),
                               "period_start": start, "period_end": t_k},
                "min_track_record": trl}
    if decision == "REJECTED":
        snapshot["reason"] = ("challenger significantly worse (lower boundary crossed)" if g["harm"]
                              else f"horizon of {cfg.horizon} trades reached without approval")
    return Evaluation(decision, score, n_k, k, bound, c, snapshot)


def track_record(ch: metrics.Summary, champ: metrics.Summary, alpha: float) -> dict:
    """Minimum track record length of the challenger's Sharpe against the champion's (as SR*)."""
    n = float(min_track_record(ch.sharpe, ch.skew, ch.kurtosis, champ.sharpe, alpha))
    if not np.isfinite(n):
        return {"trades": None, "needs_more": None, "sr": ch.sharpe, "sr_star": champ.sharpe,
                "confidence": 1 - alpha, "reason": "its Sharpe is not above the champion's: no track record "
                                                   "length would tell them apart"}
    need = max(0, int(np.ceil(n)) - ch.n)
    return {"trades": int(np.ceil(n)), "needs_more": need, "sr": ch.sharpe, "sr_star": champ.sharpe,
            "confidence": 1 - alpha,
            "reason": (f"MinTRL {int(np.ceil(n))} trades: needs ≈ {need} more" if need
                       else f"MinTRL {int(np.ceil(n))} trades: reached")}


def _at(m, i):
    from .moments import Moments

    return Moments(*(np.asarray(np.broadcast_to(getattr(m, f), m.s1.shape))[..., i]
                     for f in ("n", "s1", "s2", "s3", "s4", "wins")))


def _ge(a: float, b: float) -> bool:
    return bool(a >= b) if np.isfinite(b) else bool(not np.isfinite(a))


def _f(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None
