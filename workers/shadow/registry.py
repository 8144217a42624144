"""Registry reads and writes: deploy models, look them up, fetch return series.

Every function takes a Session inside the caller's transaction (one unit of
work); user errors raise ``ShadowError`` naming the offending field. Trades are
recorded by ``recording``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Float, case, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from shared_models.models.shadow import PromotionEvent, ShadowModel, ShadowTrade

from .errors import ShadowError

if TYPE_CHECKING:
    from .comparison import Trades

__all__ = ["ShadowError"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


def deploy(session: Session, name: str, model_type: str, description: str = "",
           parameters: dict | None = None, champion: bool = False) -> tuple[ShadowModel, bool]:
    """Register a model; (model, created). Re-deploying the same name and type is a no-op."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ShadowError(f"name: {name!r} must be 1-100 characters of letters, digits, _ . : -")
    if not model_type or len(model_type) > 50:
        raise ShadowError("type: required, at most 50 characters")
    existing = session.scalar(select(ShadowModel).where(ShadowModel.name == name))
    if existing is not None:
        if existing.model_type != model_type:
            raise ShadowError(f"name: {name!r} already deployed with type {existing.model_type!r}")
        return existing, False
    if champion:
        current = session.scalar(select(ShadowModel).where(ShadowModel.role == "champion").with_for_update())
        if current is not None:
            raise ShadowError(f"champion: {current.name!r} is the champion; deploy as a challenger and promote it")
    model = ShadowModel(name=name, model_type=model_type, description=description or "",
                        parameters=parameters or {}, role="champion" if champion else "challenger",
                        allocation=1.0 if champion else 0.0,
                        promoted_at=datetime.now(timezone.utc) if champion else None)
    session.add(model)
    session.flush()
    return model, True


def get_model(session: Session, name: str, lock: bool = False) -> ShadowModel:
    q = select(ShadowModel).where(ShadowModel.name == name)
    model = session.scalar(q.with_for_update() if lock else q)
    if model is None:
        raise ShadowError(f"model: no model named {name!r} (see `quantpipe shadow status`)")
    return model


def get_champion(session: Session) -> ShadowModel | None:
    return session.scalar(select(ShadowModel).where(ShadowModel.role == "champion"))


def trade_count(session: Session, model_id: int) -> int:
    return int(session.scalar(select(func.count()).where(ShadowTrade.model_id == model_id)) or 0)


def returns(session: Session, model_id: int, *, after: datetime | None = None, until: datetime | None = None,
            limit: int | None = None, newest: bool = False) -> np.ndarray:
    """Per-trade returns in closing order (``newest``: the last ``limit`` ones, still in order)."""
    t = ShadowTrade
    q = select(t.ret.label("r"), t.closed_at, t.id).where(t.model_id == model_id)
    if after is not None:
        q = q.where(t.closed_at > after)
    if until is not None:
        q = q.where(t.closed_at <= until)
    order = (t.closed_at.desc(), t.id.desc()) if newest else (t.closed_at, t.id)
    q = q.order_by(*order)
    if limit is not None:
        q = q.limit(limit)
    # one row holding a float8[] instead of thousands of rows: the driver parses it in C
    sub = q.subquery()
    arr = session.scalar(select(func.array_agg(aggregate_order_by(sub.c.r, sub.c.closed_at, sub.c.id))))
    return np.asarray(arr or [], dtype=float)


def _epoch(col):
    return func.date_part("epoch", col, type_=Float)      # float8 (EXTRACT is numeric: Decimals in Python)


def _agg(col, sub, ordered: bool):
    """array_agg in closing order. The input is a subquery already sorted by (closed_at, id); PostgreSQL feeds it
    to a plain aggregate in that order, so the ORDER BY inside the aggregate (a sort per array before
    PostgreSQL 16) is used only as the fallback when a check of the returned order fails."""
    return func.array_agg(aggregate_order_by(col, sub.c.closed_at, sub.c.id) if ordered else col)


def _floats(a) -> np.ndarray:
    return np.asarray(a or [], dtype=float)


def _sorted(*closes: np.ndarray) -> bool:
    return all(c.size < 2 or bool(np.all(np.diff(c) >= 0)) for c in closes)


def look_trades(session: Session, challenger_id: int, champion_id: int, n: int,
                ordered: bool = False) -> tuple["Trades", "Trades"]:
    """What a look at ``n`` trades compares, read as a few arrays (the driver parses float8[] in C).

    The challenger's first n trades in closing order; the champion's trades of the shadow period —
    opened from the challenger's first trade on, closed by its n-th close (exact timestamps, in SQL) —
    and, when the challenger's trades carry opportunity ids, the champion's trades on those too.
    Opening times are read only as far as a look uses them: the challenger's first (the period's start;
    the others are NaN) and, for the champion, "in the period" (the start) or not (−inf).
    """
    t = ShadowTrade
    ch = (select(t.ret.label("r"), t.opened_at, t.closed_at, t.id, t.opportunity_id)
          .where(t.model_id == challenger_id).order_by(t.closed_at, t.id).limit(n).subquery())
    has_ops = func.bool_or(ch.c.opportunity_id.isnot(None))
    r, c, o0, start, until, ops = session.execute(select(
        _agg(ch.c.r, ch, ordered), _agg(_epoch(ch.c.closed_at), ch, ordered),
        _agg(_epoch(ch.c.opened_at), ch, ordered)[1], _agg(ch.c.opened_at, ch, ordered)[1],
        func.max(ch.c.closed_at), case((has_ops, _agg(ch.c.opportunity_id, ch, ordered)), else_=None))).one()
    r, c = _floats(r), _floats(c)
    if r.size == 0:
        empty = _trades(r, r, r, None)
        return empty, empty
    o = np.full(r.size, np.nan)
    o[0] = float(o0)
    mine = sorted({x for x in ops if x is not None}) if ops else []
    in_period = t.opened_at >= start
    q = select(t.ret.label("r"), t.opened_at, t.closed_at, t.id, t.opportunity_id).where(
        t.model_id == champion_id, t.closed_at <= until, t.closed_at >= start,
        in_period | t.opportunity_id.in_(mine) if mine else in_period)
    if mine:   # trades on a shared opportunity may have opened before the period: keep them for the pairs only
        q = q.union_all(select(t.ret.label("r"), t.opened_at, t.closed_at, t.id, t.opportunity_id).where(
            t.model_id == champion_id, t.closed_at < start, t.opportunity_id.in_(mine)))
    cp = select(q.subquery()).order_by("closed_at", "id").subquery()
    cols = [_agg(cp.c.r, cp, ordered), _agg(_epoch(cp.c.closed_at), cp, ordered)]
    if mine:
        cols += [_agg(cp.c.opened_at >= start, cp, ordered), _agg(cp.c.opportunity_id, cp, ordered)]
    got = session.execute(select(*cols)).one()
    r2, c2 = _floats(got[0]), _floats(got[1])
    if not ordered and not _sorted(c, c2):
        return look_trades(session, challenger_id, champion_id, n, ordered=True)
    if not mine:
        return _trades(r, o, c, None), _trades(r2, np.full(r2.size, o[0]), c2, None)
    inside = np.asarray(got[2] or [], dtype=bool)
    import pandas as pd

    codes, _ = pd.factorize(pd.Series(list(ops) + list(got[3] or []), dtype=object), use_na_sentinel=True)
    return (_trades(r, o, c, codes[: r.size]),
            _trades(r2, np.where(inside, o[0], -np.inf), c2, codes[r.size:]))


def _trades(r, o, c, codes) -> "Trades":
    from .comparison import Trades

    return Trades(r, o, c, None if codes is None else np.asarray(codes, dtype=np.int64))


def history(session: Session, limit: int = 50) -> list[dict]:
    """Promotion history, newest first, with model names."""
    from sqlalchemy.orm import aliased

    frm, to = aliased(ShadowModel), aliased(ShadowModel)
    q = (select(PromotionEvent, frm.name, to.name)
         .outerjoin(frm, frm.id == PromotionEvent.from_model_id)
         .outerjoin(to, to.id == PromotionEvent.to_model_id)
         .order_by(PromotionEvent.id.desc()).limit(limit))
    return [{"id": e.id, "event": e.event, "from": f, "to": t_, "reason": e.reason, "actor": e.actor,
             "elapsed_ms": e.elapsed_ms, "created_at": e.created_at, "metrics": e.metrics}
            for e, f, t_ in session.execute(q)]


def record_trades(session: Session, model, rows, **kw):
    """Kept for callers written before ``recording``/``service``: prefer ``service.record_trades``."""
    from .recording import record_trades as record

    return record(session, model, rows, **kw)
