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
from sqlalchemy import func, select, text
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


def get_model_and_champion(session: Session, name: str) -> tuple[ShadowModel, ShadowModel | None]:
    """``get_model`` and ``get_champion`` in one statement."""
    rows = session.scalars(select(ShadowModel).where((ShadowModel.name == name) | (ShadowModel.role == "champion")))
    by_name = {m.name: m for m in rows}
    if name not in by_name:
        raise ShadowError(f"model: no model named {name!r} (see `quantpipe shadow status`)")
    return by_name[name], next((m for m in by_name.values() if m.role == "champion"), None)


def look_counts(session: Session, model_id: int) -> tuple[int, int]:
    """(``trade_count`` of the model, number of models in the registry) in one statement."""
    got = session.execute(select(select(func.count()).where(ShadowTrade.model_id == model_id).scalar_subquery(),
                                 select(func.count()).select_from(ShadowModel).scalar_subquery())).one()
    return int(got[0] or 0), int(got[1] or 0)


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


# A look's reads. The challenger's first n trades in closing order and, when they carry no opportunity id (the
# common case), the champion's trades of the shadow period, in ONE statement; with opportunity ids a second
# statement reads the champion's trades of the period plus those on the challenger's opportunities (the ids bound
# as one array constant, so the planner sees them: the partial opportunity index serves the pre-period part).
# Number arrays travel as float8send() bytes packed by string_agg (one bytea, decoded by libpq and
# np.frombuffer, exact to the bit) instead of float8[] text parsed float by float into Python lists.
# {o}: an aggregate's ORDER BY; empty when the input is a subquery already sorted by (closed_at, id), which
# PostgreSQL feeds to a plain aggregate in that order (an ORDER BY inside each aggregate is a sort per array
# before PostgreSQL 16), so it is used only as the fallback when the check of the returned order fails.
_PACK = "string_agg(float8send({x}), ''::bytea{o})"
_LOOK_SQL = """
WITH ch AS MATERIALIZED (
    SELECT "return" AS r, opened_at, closed_at, id, opportunity_id FROM shadow_trades
    WHERE model_id = :challenger ORDER BY closed_at, id LIMIT :n),
h AS MATERIALIZED (
    SELECT {r} AS r, {c} AS c, (array_agg(opened_at{o}))[1] AS start, max(closed_at) AS until,
           CASE WHEN bool_or(opportunity_id IS NOT NULL) THEN array_agg(opportunity_id{o}) END AS ops
    FROM ch),
cp AS (
    SELECT "return" AS r, closed_at, id FROM shadow_trades
    WHERE model_id = :champion AND closed_at >= (SELECT start FROM h) AND closed_at <= (SELECT until FROM h)
      AND opened_at >= (SELECT start FROM h) AND (SELECT ops IS NULL FROM h)
    ORDER BY closed_at, id)
SELECT h.r, h.c, date_part('epoch', h.start), h.start, h.until, h.ops, p.r, p.c
FROM h, (SELECT {pr} AS r, {pc} AS c FROM cp) p
"""
_PAIRED_SQL = """
SELECT {pr}, {pc}, array_agg(opened_at >= :start{o}), array_agg(opportunity_id{o}) FROM (
    SELECT "return" AS r, opened_at, closed_at, id, opportunity_id FROM (
        SELECT "return", opened_at, closed_at, id, opportunity_id FROM shadow_trades
        WHERE model_id = :champion AND closed_at <= :until AND closed_at >= :start
          AND (opened_at >= :start OR opportunity_id = ANY(:mine))
        UNION ALL
        SELECT "return", opened_at, closed_at, id, opportunity_id FROM shadow_trades
        WHERE model_id = :champion AND closed_at < :start AND opportunity_id = ANY(:mine)) u
    ORDER BY closed_at, id) cp
"""


def _look_sql(ordered: bool) -> tuple[str, str]:
    o = " ORDER BY closed_at, id" if ordered else ""
    pack = {"r": _PACK.format(x="r", o=o), "c": _PACK.format(x="date_part('epoch', closed_at)", o=o)}
    cols = {**pack, "pr": pack["r"], "pc": pack["c"], "o": o}
    return _LOOK_SQL.format(**cols), _PAIRED_SQL.format(**cols)


_LOOK_SQLS = {False: _look_sql(False), True: _look_sql(True)}


def _floats(b) -> np.ndarray:
    """float8send() bytes (big-endian) -> float64 array (native order)."""
    return np.frombuffer(b, dtype=">f8").astype(np.float64) if b else np.zeros(0)


def _sorted(*closes: np.ndarray) -> bool:
    return all(c.size < 2 or bool(np.all(np.diff(c) >= 0)) for c in closes)


def look_trades(session: Session, challenger_id: int, champion_id: int, n: int,
                ordered: bool = False) -> tuple["Trades", "Trades"]:
    """What a look at ``n`` trades compares, read as a few packed arrays (one statement without opportunity ids).

    The challenger's first n trades in closing order; the champion's trades of the shadow period —
    opened from the challenger's first trade on, closed by its n-th close (exact timestamps, in SQL) —
    and, when the challenger's trades carry opportunity ids, the champion's trades on those too.
    Opening times are read only as far as a look uses them: the challenger's first (the period's start;
    the others are NaN) and, for the champion, "in the period" (the start) or not (−inf).
    ``look_trades_reference`` is the same read row by row (the slow path the tests compare with).
    """
    look_sql, paired_sql = _LOOK_SQLS[ordered]
    r, c, o0, start, until, ops, r2, c2 = session.execute(
        text(look_sql), {"challenger": challenger_id, "champion": champion_id, "n": n}).one()
    r, c = _floats(r), _floats(c)
    if r.size == 0:
        empty = _trades(r, r, r, None)
        return empty, empty
    o = np.full(r.size, np.nan)
    o[0] = float(o0)
    if ops is None:
        r2, c2 = _floats(r2), _floats(c2)
        if not ordered and not _sorted(c, c2):
            return look_trades(session, challenger_id, champion_id, n, ordered=True)
        return _trades(r, o, c, None), _trades(r2, np.full(r2.size, o[0]), c2, None)
    mine = sorted({x for x in ops if x is not None})
    got = session.execute(text(paired_sql), {"champion": champion_id, "start": start, "until": until,
                                             "mine": mine}).one()
    r2, c2 = _floats(got[0]), _floats(got[1])
    if not ordered and not _sorted(c, c2):
        return look_trades(session, challenger_id, champion_id, n, ordered=True)
    inside = np.asarray(got[2] or [], dtype=bool)
    import pandas as pd

    codes, _ = pd.factorize(pd.Series(list(ops) + list(got[3] or []), dtype=object), use_na_sentinel=True)
    return (_trades(r, o, c, codes[: r.size]),
            _trades(r2, np.where(inside, o[0], -np.inf), c2, codes[r.size:]))


def look_trades_reference(session: Session, challenger_id: int, champion_id: int,
                          n: int) -> tuple["Trades", "Trades"]:
    """``look_trades`` row by row through the ORM, in Python: what the tests and the benchmark check it against."""
    t = ShadowTrade
    cols = (t.ret, t.opened_at, t.closed_at, t.opportunity_id)
    ch = session.execute(select(*cols).where(t.model_id == challenger_id).order_by(t.closed_at, t.id)
                         .limit(n)).all()
    if not ch:
        empty = _trades(np.zeros(0), np.zeros(0), np.zeros(0), None)
        return empty, empty
    start, until = ch[0].opened_at, max(x.closed_at for x in ch)
    mine = {x.opportunity_id for x in ch if x.opportunity_id is not None}
    cp = [x for x in session.execute(select(*cols).where(t.model_id == champion_id, t.closed_at <= until)
                                     .order_by(t.closed_at, t.id))
          if x.opened_at >= start or x.opportunity_id in mine]
    o0 = start.timestamp()
    o = np.full(len(ch), np.nan)
    o[0] = o0
    codes: dict[str, int] = {}
    code = [-1 if x.opportunity_id is None else codes.setdefault(x.opportunity_id, len(codes)) for x in ch + cp]
    return (_trades(np.array([x.ret for x in ch], dtype=float), o,
                    np.array([x.closed_at.timestamp() for x in ch]), code[: len(ch)] if mine else None),
            _trades(np.array([x.ret for x in cp], dtype=float),
                    np.array([o0 if x.opened_at >= start else -np.inf for x in cp]),
                    np.array([x.closed_at.timestamp() for x in cp]), code[len(ch):] if mine else None))


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
