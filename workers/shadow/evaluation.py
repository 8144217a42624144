"""Champion/challenger evaluation: five primary and three secondary criteria, a
0–100 score and a decision APPROVED / PENDING / REJECTED with every reason.

Only one criterion can *promote*: the sequential superiority test of mean trade
return (Welch z against the alpha-spending boundary of the current look). The
other primary criteria are safety checks that can only withhold approval, so the
false promotion rate of the whole rule is at most that of the gate, i.e. at most
SHADOW_ALPHA over all looks up to SHADOW_MAX_TRADES.

Primary:  P1 sequential superiority (mean return)   P2 Sharpe not significantly lower
          P3 win rate not significantly lower        P4 drawdown within tolerance (noise-aware)
          P5 deflated Sharpe ratio ≥ 0.95 (real skill after counting every challenger tried)
Secondary (score only): S1 bootstrap P(mean better) ≥ 0.95, S2 Sortino ≥ champion's,
          S3 profit factor ≥ champion's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

from . import bootstrap, metrics
from .moments import Moments, deflated_sharpe, psr, sharpe_diff_z, welch_z, win_rate_z
from .sequential import boundaries, look_index, schedule

PRIMARY_WEIGHT = 16.0     # 5 × 16 = 80
SECONDARY_WEIGHT = 20.0 / 3.0
DSR_THRESHOLD = 0.95


@dataclass(frozen=True)
class EvalConfig:
    min_trades: int = 500
    interval: int = 100
    horizon: int = 5000
    alpha: float = 0.05
    spending: str = "obf"
    mdd_tolerance: float = 1.20
    n_bootstrap: int = 10_000

    @classmethod
    def from_settings(cls, s) -> "EvalConfig":
        sh = s.shadow
        return cls(sh.min_trades, sh.check_interval, sh.max_trades, sh.alpha, sh.spending, sh.mdd_tolerance,
                   sh.n_bootstrap)

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


def gate(ch: Moments, champ: Moments, bound: np.ndarray, alpha: float, n_trials: int = 1) -> dict[str, np.ndarray]:
    """The moment-based primary criteria (all but drawdown), vectorised over runs × looks."""
    z = welch_z(ch, champ)
    crit = stats.norm.ppf(1 - alpha)
    return {
        "z": z,
        "superior": z >= bound,
        "harm": z <= -bound,
        "sharpe_ok": sharpe_diff_z(ch, champ) > -crit,
        "win_ok": win_rate_z(ch, champ) > -crit,
        "dsr_ok": deflated_sharpe(ch, n_trials) >= DSR_THRESHOLD,
    }


def evaluate(challenger: np.ndarray, champion: np.ndarray, cfg: EvalConfig, rng: np.random.Generator,
             n_trials: int = 1) -> Evaluation:
    """Evaluate at the latest planned look reached by ``challenger`` (its first n_k trades)."""
    challenger, champion = np.asarray(challenger, float), np.asarray(champion, float)
    looks = cfg.looks
    k = look_index(challenger.size, looks)
    if k < 0:
        return Evaluation("PENDING", 0.0, int(challenger.size), -1, None, [], {
            "reason": f"{challenger.size} trades < SHADOW_MIN_TRADES ({cfg.min_trades})"})
    if champion.size < 2:
        return Evaluation("PENDING", 0.0, int(challenger.size), k, None, [],
                          {"reason": f"champion has {champion.size} trades to compare with"})
    n_k = int(looks[k])
    ch = challenger[:n_k]
    bound = float(cfg.bounds()[k])
    mc, mp = Moments.of(ch), Moments.of(champion)
    g = gate(mc, mp, np.asarray(bound), cfg.alpha, n_trials)
    sc, sp = metrics.summarize(ch), metrics.summarize(champion)
    dd = metrics.drawdown_test(ch, champion, cfg.mdd_tolerance, cfg.alpha, rng)
    boot = bootstrap.mean_diff(ch, champion, cfg.n_bootstrap, rng)
    z_sr, z_wr, dsr = float(sharpe_diff_z(mc, mp)), float(win_rate_z(mc, mp)), float(deflated_sharpe(mc, n_trials))
    crit = float(stats.norm.ppf(1 - cfg.alpha))
    z = float(g["z"])
    c = [
        Criterion("sequential_superiority", True, bool(g["superior"]), z, bound,
                  f"Welch z {z:.2f} {'≥' if g['superior'] else '<'} boundary {bound:.2f} at look {k + 1}/"
                  f"{looks.size} ({n_k} trades, {cfg.spending} alpha spending, overall α={cfg.alpha})"),
        Criterion("sharpe_not_worse", True, bool(g["sharpe_ok"]), z_sr, -crit,
                  f"Sharpe {sc.sharpe:.3f} vs {sp.sharpe:.3f} per trade, difference z {z_sr:.2f}"),
        Criterion("win_rate_not_worse", True, bool(g["win_ok"]), z_wr, -crit,
                  f"win rate {sc.win_rate:.1%} vs {sp.win_rate:.1%}, two-proportion z {z_wr:.2f}"),
        Criterion("drawdown_within_tolerance", True, not dd["worse"], dd["z"], crit,
                  f"MDD {dd['mdd_challenger']:.1%} vs {dd['mdd_champion']:.1%} (tolerance ×{cfg.mdd_tolerance}); "
                  f"{'significantly' if dd['worse'] else 'not significantly'} beyond tolerance given its noise "
                  f"(z {dd['z']:.2f})"),
        Criterion("deflated_sharpe", True, bool(g["dsr_ok"]), dsr, DSR_THRESHOLD,
                  f"DSR {dsr:.3f} over {n_trials} trial(s)"),
        Criterion("bootstrap_superiority", False, boot.p_superior >= 1 - cfg.alpha, boot.p_superior, 1 - cfg.alpha,
                  f"{boot.resamples} resamples: mean diff {boot.diff:+.4%} "
                  f"[{boot.ci_low:+.4%}, {boot.ci_high:+.4%}], P(better) {boot.p_superior:.3f}"),
        Criterion("sortino_not_worse", False, _ge(sc.sortino, sp.sortino), _f(sc.sortino), _f(sp.sortino),
                  f"Sortino {sc.sortino:.3f} vs {sp.sortino:.3f}"),
        Criterion("profit_factor_not_worse", False, _ge(sc.profit_factor, sp.profit_factor), _f(sc.profit_factor),
                  _f(sp.profit_factor), f"profit factor {sc.profit_factor:.2f} vs {sp.profit_factor:.2f}"),
    ]
    score = round(sum((PRIMARY_WEIGHT if x.primary else SECONDARY_WEIGHT) for x in c if x.passed), 1)
    if all(x.passed for x in c if x.primary):
        decision = "APPROVED"
    elif bool(g["harm"]) or k == looks.size - 1:
        decision = "REJECTED"
    else:
        decision = "PENDING"
    snapshot = {"challenger": sc.as_dict(), "champion": sp.as_dict(), "bootstrap": boot.as_dict(),
                "drawdown": dd, "welch_z": z, "psr": float(psr(mc.sharpe, mc.n, mc.skew, mc.kurtosis)),
                "dsr": dsr, "n_trials": n_trials}
    if decision == "REJECTED":
        snapshot["reason"] = ("challenger significantly worse (lower boundary crossed)" if g["harm"]
                              else f"horizon of {cfg.horizon} trades reached without approval")
    return Evaluation(decision, score, n_k, k, bound, c, snapshot)


def _ge(a: float, b: float) -> bool:
    return bool(a >= b) if np.isfinite(b) else bool(not np.isfinite(a))


def _f(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None
