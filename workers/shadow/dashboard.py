"""Registry overview for `quantpipe shadow status` (the seed's dashboard), read-only."""

from __future__ import annotations

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from shared_models.models.shadow import ShadowEvaluation, ShadowModel, ShadowTrade

from . import metrics, registry
from .thompson import Posterior, allocate


def overview(session: Session, settings, include_archived: bool = False, seed: int = 0) -> list[dict]:
    """One row per model: role, trades, win rate, mean, Sharpe, MDD, Thompson shares, last evaluation."""
    t = ShadowTrade
    agg = (select(t.model_id, func.count().label("n"), func.sum(case((t.ret > 0, 1), else_=0)).label("wins"),
                  func.avg(t.ret).label("mean"), func.coalesce(func.var_samp(t.ret), 0.0).label("var"))
           .group_by(t.model_id).subquery())
    q = (select(ShadowModel, agg.c.n, agg.c.wins, agg.c.mean, agg.c.var)
         .outerjoin(agg, agg.c.model_id == ShadowModel.id).order_by(
             case((ShadowModel.role == "champion", 0), (ShadowModel.role == "challenger", 1), else_=2),
             ShadowModel.name))
    if not include_archived:
        q = q.where(ShadowModel.role != "archived")
    rows = session.execute(q).all()
    last_eval = {e.challenger_id: e for e in session.scalars(
        select(ShadowEvaluation).distinct(ShadowEvaluation.challenger_id)
        .order_by(ShadowEvaluation.challenger_id, ShadowEvaluation.n_trades.desc(), ShadowEvaluation.id.desc()))}
    posts = [Posterior(m.name, m.role, int(n or 0), int(w or 0), float(mean or 0.0), float(var or 0.0))
             for m, n, w, mean, var in rows if m.role != "archived"]
    ts = allocate(posts, np.random.default_rng(seed))
    out = []
    for m, n, wins, mean, var in rows:
        n = int(n or 0)
        sd = float(np.sqrt(var)) if var else 0.0
        mdd = float(metrics.max_drawdown(registry.returns(session, m.id))) if n else None
        e = last_eval.get(m.id)
        out.append({
            "name": m.name, "type": m.model_type, "role": m.role, "allocation": m.allocation, "trades": n,
            "win_rate": (int(wins) / n) if n else None, "mean_return": float(mean) if n else None,
            "sharpe": (float(mean) / sd) if n and sd > 0 else None, "max_drawdown": mdd,
            "progress": min(n / settings.shadow.min_trades, 1.0) if m.role == "challenger" else None,
            "p_best": ts.get(m.name, {}).get("p_best"), "exploration": ts.get(m.name, {}).get("exploration"),
            "proposed_allocation": ts.get(m.name, {}).get("allocation"),
            "last_decision": e.decision if e else None, "last_score": e.score if e else None,
            "evaluated_at_trades": e.n_trades if e else None,
        })
    return out
