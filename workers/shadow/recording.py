"""Recording trades: every row on its own merits, one batch one transaction.

A batch is never hostage to one row: whatever a row is (not an object, a NUL
in a field, ``shadow=[1]``, a return of 1e308, a trade id re-sent with other
values), it is dead-lettered with the field and the reason and the good rows of
the same batch are stored. Nothing that reaches ``record_trades`` can make the
INSERT itself fail: every value was made storable by the schema first.

Idempotent: trades are unique per (model, trade id); an exact re-send is a
*duplicate* (not stored twice, not an error), a re-send with other values is a
*conflict* (the first version stays; the new one is dead-lettered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared_models import dead_letters
from shared_models.models.shadow import ShadowModel, ShadowTrade

from .registry import trade_count
from .schemas import Trade, TradeRejected, parse_trade

MAX_REPORTED = 100          # rejections carried in the result (all of them are in dead_letters)
_COMPARED = ("opened_at", "closed_at", "ret", "pnl", "shadow", "opportunity_id")


@dataclass(frozen=True)
class Rejection:
    index: int              # position in the batch (the CLI maps it to a line of its file)
    field: str
    reason: str

    def as_dict(self) -> dict:
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class RecordResult:
    model: str
    inserted: int
    duplicates: int
    rejected: int
    total: int
    looks_reached: list[int]        # planned evaluation looks crossed by this batch
    role: str | None = None         # None: no such model
    rejections: list[Rejection] = field(default_factory=list)   # the first MAX_REPORTED

    @property
    def evaluate(self) -> bool:
        """Does this batch call for an evaluation (a challenger crossed a planned look)?"""
        return bool(self.looks_reached) and self.role == "challenger"

    def as_dict(self) -> dict:
        return {"model": self.model, "inserted": self.inserted, "duplicates": self.duplicates,
                "rejected": self.rejected, "total": self.total, "looks_reached": list(self.looks_reached),
                "role": self.role, "rejections": [r.as_dict() for r in self.rejections]}


def _label(value: Any, limit: int = 100) -> str:
    """A model name for results and messages, whatever was passed as one."""
    text = (value if isinstance(value, str) else repr(value))[:limit].replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def keep_rejections(session: Session, *, source: str, model: str, rows: list[tuple[int, Any, str, str]]) -> None:
    """Dead-letter (index, row, field, reason) tuples in the caller's transaction (the shared helper caps the
    payload and makes any shape storable: NUL, NaN, lone surrogates, deep nesting, megabytes)."""
    dead_letters.keep_many(session, "shadow", [
        dead_letters.Letter(source=source, reason=reason, field=fld, payload={"model": model, "index": index,
                                                                              "row": row})
        for index, row, fld, reason in rows])


def _stored(session: Session, model_id: int, ids: set[str]) -> dict[str, Any]:
    t = ShadowTrade
    q = select(t.trade_id, *(getattr(t, c) for c in _COMPARED)).where(t.model_id == model_id,
                                                                       t.trade_id.in_(sorted(ids)))
    return {r.trade_id: r for r in session.execute(q)}


def _conflict(stored: Any, mine: dict) -> str | None:
    """Why a re-sent row is not the stored trade, or None when it is the same trade."""
    for c in _COMPARED:
        if c == "shadow" and not mine["shadow_given"]:
            continue
        if getattr(stored, c) != mine[c]:
            return (f"trade_id: {stored.trade_id!r} is already recorded with other values "
                    f"({'return' if c == 'ret' else c} {getattr(stored, c)!r}, re-sent {mine[c]!r}); "
                    "the first version is kept")
    return None


def _resolve(session: Session, model: Any) -> ShadowModel | None:
    if isinstance(model, ShadowModel):
        return model
    if not isinstance(model, str) or not model or len(model) > 100 or "\x00" in model:
        return None
    return session.scalar(select(ShadowModel).where(ShadowModel.name == model))


def record_trades(session: Session, model: Any, rows: Any, *, source: str, min_trades: int, interval: int,
                  horizon: int, max_reported: int | None = MAX_REPORTED) -> RecordResult:
    """Store the good rows of a batch idempotently; dead-letter every other row with its field and reason
    (the result lists the first ``max_reported`` rejections; None: all)."""
    m = _resolve(session, model)
    name = m.name if m is not None else _label(model)
    if not isinstance(rows, (list, tuple)):
        keep_rejections(session, source=source, model=name,
                        rows=[(0, rows, "trades", f"trades: must be a list of trade objects, "
                                                  f"got {type(rows).__name__}")])
        return RecordResult(name, 0, 0, 1, 0, [], m.role if m else None,
                            [Rejection(0, "trades", "trades: must be a list of trade objects")])
    rejections: list[tuple[int, Any, str, str]] = []
    if m is None:
        reason = f"model: no model named {_label(model)} (deploy it first; see `quantpipe shadow status`)"
        rejections = [(i, row, "model", reason) for i, row in enumerate(rows)]
        keep_rejections(session, source=source, model=name, rows=rejections)
        return RecordResult(name, 0, 0, len(rows), 0, [], None, [Rejection(i, f, r) for i, _, f, r in
                                                                 rejections[:max_reported]])
    default_shadow = m.role != "champion"
    good: list[tuple[int, dict]] = []
    for i, row in enumerate(rows):
        try:
            trade: Trade = parse_trade(row)
        except TradeRejected as exc:
            rejections.append((i, row, exc.field, exc.reason))
            continue
        values = trade.model_dump()
        # "by role" is not part of a trade's identity: a batch redelivered after a promotion is the same trade
        values["shadow_given"] = values["shadow"] is not None
        if values["shadow"] is None:
            values["shadow"] = default_shadow
        good.append((i, values))
    inserted_ids: set[str] = set()
    table = ShadowTrade.__table__
    for start in range(0, len(good), 5000):
        chunk = [{"model_id": m.id, "trade_id": v["trade_id"], "opened_at": v["opened_at"],
                  "closed_at": v["closed_at"], "return": v["ret"], "pnl": v["pnl"], "shadow": v["shadow"],
                  "opportunity_id": v["opportunity_id"]} for _, v in good[start:start + 5000]]
        stmt = insert(table).values(chunk).on_conflict_do_nothing(
            index_elements=["model_id", "trade_id"]).returning(table.c.trade_id)
        inserted_ids.update(session.execute(stmt).scalars())
    # a row not inserted is either an exact re-send (fine) or a conflicting one (dead-lettered);
    # within a batch the first row of an id is the one inserted, later ones are compared with it
    first_of: dict[str, int] = {}
    leftovers = []
    for i, v in good:
        if v["trade_id"] in inserted_ids and first_of.setdefault(v["trade_id"], i) == i:
            continue
        leftovers.append((i, v))
    stored = _stored(session, m.id, {v["trade_id"] for _, v in leftovers}) if leftovers else {}
    duplicates = 0
    for i, v in leftovers:
        why = _conflict(stored[v["trade_id"]], v)
        if why:
            rejections.append((i, rows[i], "trade_id", why))
        else:
            duplicates += 1
    rejections.sort(key=lambda r: r[0])
    keep_rejections(session, source=source, model=m.name, rows=rejections)
    from .sequential import schedule

    total = trade_count(session, m.id)
    looks = schedule(min_trades, interval, horizon)
    reached = [int(n) for n in looks if total - len(inserted_ids) < n <= total]
    return RecordResult(m.name, len(inserted_ids), duplicates, len(rejections), total, reached, m.role,
                        [Rejection(i, f, r) for i, _, f, r in rejections[:max_reported]])
