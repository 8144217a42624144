"""Thompson sampling over the registry's models.

Each model gets two posteriors from its trades: Beta(1 + wins, 1 + losses) on the
win rate and a Normal–Inverse-Gamma on the mean trade return (weak prior
centred on 0). A draw of every posterior at once says which model is best in
that draw; the share of draws a model wins is its probability of being best.

- ``exploration``: that probability renormalised over the *challengers* — how
  to spread shadow (paper) exploration and evaluation effort among them;
- ``allocation``: the capital proposal. Only live models get capital; shadow
  challengers stay at 0 % until promoted (the database enforces it too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Posterior:
    name: str
    role: str
    n: int
    wins: int
    mean: float
    var: float


def nig_draws(p: Posterior, draws: int, rng: np.random.Generator, mu0: float = 0.0, kappa0: float = 1.0,
              a0: float = 1.0, b0: float = 1e-4) -> np.ndarray:
    """Draws of the mean return from the Normal–Inverse-Gamma posterior (conjugate update)."""
    kappa = kappa0 + p.n
    mu = (kappa0 * mu0 + p.n * p.mean) / kappa
    a = a0 + p.n / 2.0
    ss = p.var * max(p.n - 1, 0)
    b = b0 + 0.5 * ss + kappa0 * p.n * (p.mean - mu0) ** 2 / (2.0 * kappa)
    sigma2 = b / rng.gamma(a, 1.0, size=draws)
    return mu + np.sqrt(sigma2 / kappa) * rng.standard_normal(draws)


def allocate(models: list[Posterior], rng: np.random.Generator, draws: int = 10_000) -> dict[str, dict]:
    """p_best (mean return), p_best_win (win rate), exploration share and proposed capital allocation."""
    if not models:
        return {}
    mean_draws = np.stack([nig_draws(m, draws, rng) for m in models])
    win_draws = np.stack([rng.beta(1 + m.wins, 1 + m.n - m.wins, size=draws) for m in models])
    p_best = np.bincount(mean_draws.argmax(0), minlength=len(models)) / draws
    p_best_win = np.bincount(win_draws.argmax(0), minlength=len(models)) / draws
    live = np.array([m.role == "champion" for m in models])
    chall = np.array([m.role == "challenger" for m in models])
    alloc = np.where(live, p_best, 0.0)
    alloc = alloc / alloc.sum() if alloc.sum() > 0 else np.where(live, 1.0 / max(live.sum(), 1), 0.0)
    expl = np.where(chall, p_best, 0.0)
    expl = expl / expl.sum() if expl.sum() > 0 else np.where(chall, 1.0 / max(chall.sum(), 1), 0.0)
    return {m.name: {"p_best": float(p_best[i]), "p_best_win": float(p_best_win[i]),
                     "exploration": float(expl[i]), "allocation": float(alloc[i])}
            for i, m in enumerate(models)}
