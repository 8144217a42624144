"""The rollback rule for a newly promoted champion.

The seed's rule — "roll back if the win rate drops 5 points in the first 100
trades" — fires on a perfectly good promotion more than one time in eight: the
standard error of a win rate over 100 trades is about 5 points, so a 5-point
drop is only a one-sigma event (P ≈ 0.16).

Corrected rule: a one-sided group-sequential two-proportion test of the new
champion's win rate against the reference (the previous champion's last
trades before the promotion). Looks every ``SHADOW_ROLLBACK_CHECK`` trades up
to ``SHADOW_ROLLBACK_WINDOW``; Pocock-type alpha spending (it spends early, so a
real collapse is caught within the first looks) with overall false-rollback
rate ``SHADOW_ROLLBACK_ALPHA``. Every planned look reached so far is checked on
every run, so a monitor that ran late loses no look and re-running is harmless.
A nominal one-sided z ≤ −1.645 that has not crossed the boundary raises a
*degradation* alert instead of a rollback.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .moments import Moments
from .sequential import boundaries, schedule


@dataclass(frozen=True)
class RollbackConfig:
    window: int = 500
    check: int = 25
    alpha: float = 0.05

    @classmethod
    def from_settings(cls, s) -> "RollbackConfig":
        return cls(s.shadow.rollback_window, s.shadow.rollback_check, s.shadow.rollback_alpha)

    @property
    def looks(self) -> np.ndarray:
        return schedule(self.check, self.check, self.window)

    def bounds(self) -> np.ndarray:
        return boundaries(self.looks, self.window, self.alpha, "pocock")


@dataclass(frozen=True)
class MonitorResult:
    n_trades: int
    looks_done: int
    z: float | None
    boundary: float | None
    rollback: bool
    degraded: bool
    finished: bool        # the window is over: the promotion is confirmed
    reason: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def decline_z(new: Moments, ref: Moments) -> np.ndarray:
    """Pooled two-proportion z of the new champion's win-rate change, with a
    continuity correction of half a trade: win counts are discrete, and without it
    the first looks (25, 50 trades) reject slightly more often than they should."""
    p = (new.wins + ref.wins) / (new.n + ref.n)
    se = np.sqrt(np.maximum(p * (1 - p) * (1 / new.n + 1 / ref.n), 1e-300))
    return (new.win_rate + 0.5 / new.n - ref.win_rate) / se


def monitor(new_returns: np.ndarray, ref_returns: np.ndarray, cfg: RollbackConfig) -> MonitorResult:
    """Check every planned look reached by the new champion's post-promotion trades."""
    new_returns = np.asarray(new_returns, dtype=float)[: cfg.window]
    looks = cfg.looks
    done = looks[looks <= new_returns.size]
    if done.size == 0 or len(ref_returns) < 2:
        return MonitorResult(int(new_returns.size), 0, None, None, False, False, False,
                             f"waiting for {looks[0]} post-promotion trades")
    z = decline_z(Moments.at_looks(new_returns, done), Moments.of(ref_returns))
    bounds = cfg.bounds()[: done.size]
    crossed = np.nonzero(z <= -bounds)[0]
    ref_wr = float((np.asarray(ref_returns) > 0).mean())
    if crossed.size:
        k = int(crossed[0])
        wr = float((new_returns[: done[k]] > 0).mean())
        return MonitorResult(int(done[k]), int(done.size), float(z[k]), float(-bounds[k]), True, True, False,
                             f"win rate {wr:.1%} over {done[k]} trades vs reference {ref_wr:.1%}: "
                             f"z {z[k]:.2f} ≤ {-bounds[k]:.2f} (sequential, α={cfg.alpha})")
    last = float(z[-1])
    degraded = last <= -stats.norm.ppf(0.95)
    wr = float((new_returns[: done[-1]] > 0).mean())
    return MonitorResult(int(done[-1]), int(done.size), last, float(-bounds[done.size - 1]), False, bool(degraded),
                         bool(done[-1] == looks[-1]),
                         f"win rate {wr:.1%} over {done[-1]} trades vs reference {ref_wr:.1%}: z {last:.2f}")


def seed_rule(new_returns: np.ndarray, ref_returns: np.ndarray, drop: float = 0.05, n: int = 100) -> np.ndarray:
    """The seed's literal rule, kept only to measure how often it misfires (vectorised over runs)."""
    return (new_returns[..., :n] > 0).mean(-1) < (ref_returns > 0).mean(-1) - drop
