"""Registry overview for `quantpipe shadow status` (the seed's dashboard), read-only."""

from __future__ import annotations

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from shared_models.models.shadow import ShadowEvaluation, ShadowModel, ShadowTrade

from . import metrics, registry
from .moments import Moments, min_track_record
from .thompson import Posterior, allocate


def _sums(t=ShadowTrade):
    r = t.ret
    return (func.count().label("n"), func.coalesce(func.sum(r), 0.0).label("s1"),
            func.coalesce(func.sum(r * r), 0.0).label("s2"), func.coalesce(func.sum(r * r * r), 0.0).label("s3"),
            func.coalesce(func.sum(r * r * r * r), 0.0).label("s4"),
            func.sum(case((r > 0, 1), else_=0)).label("wins"))


def _moments(row) -> Moments:
    return Moments(*(np.asarray(float(getattr(row, f) or 0.0)) for f in ("n", "s1", "s2", "s3", "s4", "wins")))


def track_record(session: Session, challenger_id: int, champion_id: int | None, ch: Moments,
                 alpha: float) -> tuple[int | None, int | None]:
    """(MinTRL, trades still needed) of a challenger's Sharpe against the champion's over the same period
    (Bailey & López de Prado 2012); (None, None) when it cannot be told apart (not better, or no data)."""
    if champion_id is None or float(ch.n) < 3:
        return None, None
    t = ShadowTrade
    start = session.scalar(select(t.opened_at).where(t.model_id == challenger_id)
                           .order_by(t.closed_at, t.id).limit(1))
    champ = _moments(session.execute(select(*_sums()).where(t.model_id == champion_id, t.opened_at >= start)).one())
    if float(champ.n) < 3:
        return None, None
    with np.errstate(invalid="ignore", divide="ignore"):
        n = float(min_track_record(ch.sharpe, ch.skew, ch.kurtosis, champ.sharpe, alpha))
    if not np.isfinite(n):
        return None, None
    return int(np.ceil(n)), max(0, int(np.ceil(n)) - int(ch.n))


def overview(session: Session, settings, include_archived: bool = False, seed: int = 0) -> list[dict]:
    """One row per model: role, trades, win rate, mean, Sharpe, MDD, Thompson shares, last evaluation and,
    for challengers, the minimum track record length ("needs ≈ N more trades")."""
    t = ShadowTrade
    agg = select(t.model_id, *_sums()).group_by(t.model_id).subquery()
    q = (select(ShadowModel, agg).outerjoin(agg, agg.c.model_id == ShadowModel.id).order_by(
        case((ShadowModel.role == "champion", 0), (ShadowModel.role == "challenger", 1), else_=2),
        ShadowModel.name))
    if not include_archived:
        q = q.where(ShadowModel.role != "archived")
    rows = [(r[0], _moments(r)) for r in session.execute(q).all()]
    last_eval = {e.challenger_id: e for e in session.scalars(
        select(ShadowEvaluation).distinct(ShadowEvaluation.challenger_id)
        .order_by(ShadowEvaluation.challenger_id, ShadowEvaluation.n_trades.desc(), ShadowEvaluation.id.desc()))}
    posts = [Posterior(m.name, m.role, int(mo.n), int(mo.wins), float(mo.mean) if mo.n else 0.0,
                       float(mo.var) if mo.n > 1 else 0.0) for m, mo in rows if m.role != "archived"]
    ts = allocate(posts, np.random.default_rng(seed))
    champion_id = next((m.id for m, _ in rows if m.role == "champion"), None)
    out = []
    for m, mo in rows:
        n = int(mo.n)
        sd = float(np.sqrt(mo.var)) if n > 1 else 0.0
        mdd = float(metrics.max_drawdown(registry.returns(session, m.id))) if n else None
        e = last_eval.get(m.id)
        trl, need = (track_record(session, m.id, champion_id, mo, settings.shadow.alpha)
                     if m.role == "challenger" else (None, None))
        out.append({
            "name": m.name, "type": m.model_type, "role": m.role, "description": m.description,
            "allocation": m.allocation, "trades": n, "created_at": m.created_at, "promoted_at": m.promoted_at,
            "win_rate": float(mo.win_rate) if n else None, "mean_return": float(mo.mean) if n else None,
            "sharpe": float(mo.mean) / sd if n > 1 and sd > 0 else None, "max_drawdown": mdd,
            "progress": min(n / settings.shadow.min_trades, 1.0) if m.role == "challenger" else None,
            "p_best": ts.get(m.name, {}).get("p_best"), "exploration": ts.get(m.name, {}).get("exploration"),
            "proposed_allocation": ts.get(m.name, {}).get("allocation"),
            "last_decision": e.decision if e else None, "last_score": e.score if e else None,
            "evaluated_at_trades": e.n_trades if e else None,
            "evaluated_at": e.created_at if e else None,
            "min_track_record": trl, "needs_trades": need,
        })
    return out
