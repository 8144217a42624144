"""Registry reads and writes: deploy models, look them up, fetch return series.

Every function takes a Session inside the caller's transaction (one unit of
work); user errors raise ``ShadowError`` naming the offending field. Trades are
recorded by ``recording``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from shared_models.models.shadow import PromotionEvent, ShadowModel, ShadowTrade

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class ShadowError(ValueError):
    """A user error: unknown model, bad field, refused promotion. The message names the field."""


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


def first_returns(session: Session, model_id: int, n: int) -> tuple[np.ndarray, datetime | None]:
    """The model's first ``n`` returns in closing order and the closing time of the n-th, in one query."""
    t = ShadowTrade
    sub = (select(t.ret.label("r"), t.closed_at, t.id).where(t.model_id == model_id)
           .order_by(t.closed_at, t.id).limit(n).subquery())
    arr, last = session.execute(select(func.array_agg(aggregate_order_by(sub.c.r, sub.c.closed_at, sub.c.id)),
                                       func.max(sub.c.closed_at))).one()
    return np.asarray(arr or [], dtype=float), last


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
