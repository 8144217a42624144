"""Read side of the discovery pool: the one query layer the main app, the CLI and the HTTP API call.

Plain functions over a Session, returning plain dicts under seed 002's field names
(``pattern_type``, ``strength``, ``politician_name``, ``description``, ``discovery_date``,
UUID ``politician_id`` …). The main app connects as ``quantpipe_app`` (SELECT on the
outputs, politicians and trades; UPDATE on ``anomaly_detections.investigated`` only),
which is all these need.

Lists take ``limit`` (1..``MAX_LIMIT``) and ``offset`` (>= 0) and have a total order, so
pages do not overlap. A bad argument raises ``ValueError`` naming it; an unknown
politician raises ``LookupError`` naming ``politician_id``.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Text, func, select, update
from sqlalchemy.orm import Session

from .models.discovery import AnomalyDetection, ModelExperiment, NetworkDiscovery, PatternDiscovery, Politician, Trade

MAX_LIMIT = 500
MAX_SEARCH = 200

_PATTERN = [c for c in PatternDiscovery.__table__.c]
_ANOMALY = [c for c in AnomalyDetection.__table__.c]
_NETWORK = [c for c in NetworkDiscovery.__table__.c]
_EXPERIMENT = [c for c in ModelExperiment.__table__.c]
_POLITICIAN = [c for c in Politician.__table__.c if c.name not in ("created_at", "updated_at")]
_TRADE = [c for c in Trade.__table__.c if c.name not in ("row_hash", "created_at")]
_NAME = Politician.full_name.label("politician_name")


def _page(limit: Any, offset: Any) -> tuple[int, int]:
    for name, value, low in (("limit", limit, 1), ("offset", offset, 0)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}: expected an integer, got {value!r}")
        if value < low or (name == "limit" and value > MAX_LIMIT):
            raise ValueError(f"{name}: {value} is outside {low}..{MAX_LIMIT if name == 'limit' else 'inf'}")
    return limit, offset


def _threshold(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _kind(name: str, value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 40:
        raise ValueError(f"{name}: expected 1-40 characters, got {str(value)[:80]!r}")
    return value


def politician_uuid(value: Any) -> uuid.UUID:
    """A politician id as given by a caller (UUID or its string form)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        if not isinstance(value, str) or len(value) > 64:
            raise ValueError
        return uuid.UUID(value)
    except ValueError:
        raise ValueError(f"politician_id: expected a UUID, got {str(value)[:80]!r}") from None


def _rows(session: Session, stmt) -> list[dict]:
    return [dict(r) for r in session.execute(stmt).mappings()]


def _known(session: Session, pid: uuid.UUID) -> None:
    if session.execute(select(Politician.id).where(Politician.id == pid)).first() is None:
        raise LookupError(f"politician_id: no politician with id {pid}")


def recent_discoveries(session: Session, min_strength: float | None = None, *, limit: int = 10, offset: int = 0,
                       days: int | None = None, pattern_type: str | None = None, by: str = "date") -> list[dict]:
    """Pattern discoveries (strength > ``min_strength`` when given; of one ``pattern_type`` when given),
    newest first (``by="strength"``: strongest first), with ``politician_name``."""
    if by not in ("date", "strength"):
        raise ValueError(f"by: {by!r} is not 'date' or 'strength'")
    limit, offset = _page(limit, offset)
    stmt = select(*_PATTERN, _NAME).join(Politician, Politician.id == PatternDiscovery.politician_id)
    if pattern_type is not None:
        stmt = stmt.where(PatternDiscovery.pattern_type == _kind("pattern_type", pattern_type))
    if min_strength is not None:
        stmt = stmt.where(PatternDiscovery.strength > _threshold("min_strength", min_strength))
    if days is not None:
        stmt = stmt.where(PatternDiscovery.discovery_date >= datetime.now(timezone.utc) - timedelta(days=days))
    first = PatternDiscovery.strength.desc() if by == "strength" else PatternDiscovery.discovery_date.desc()
    return _rows(session, stmt.order_by(first, PatternDiscovery.discovery_date.desc(), PatternDiscovery.id.desc())
                 .limit(limit).offset(offset))


def critical_anomalies(session: Session, severity_threshold: float = 0.8, *, limit: int = 50,
                       offset: int = 0, anomaly_type: str | None = None) -> list[dict]:
    """Uninvestigated anomalies with severity >= ``severity_threshold`` (of one ``anomaly_type`` when
    given), most severe first."""
    limit, offset = _page(limit, offset)
    stmt = (select(*_ANOMALY, _NAME).join(Politician, Politician.id == AnomalyDetection.politician_id)
            .where(AnomalyDetection.severity >= _threshold("severity_threshold", severity_threshold),
                   AnomalyDetection.investigated.is_(False)))
    if anomaly_type is not None:
        stmt = stmt.where(AnomalyDetection.anomaly_type == _kind("anomaly_type", anomaly_type))
    return _rows(session, stmt.order_by(AnomalyDetection.severity.desc(), AnomalyDetection.id)
                 .limit(limit).offset(offset))


def politician_discoveries(session: Session, politician_id: uuid.UUID | str, *, limit: int = 50,
                           offset: int = 0) -> list[dict]:
    """One politician's pattern discoveries, strongest first (seed 002's route)."""
    limit, offset = _page(limit, offset)
    pid = politician_uuid(politician_id)
    _known(session, pid)
    stmt = (select(*_PATTERN, _NAME).join(Politician, Politician.id == PatternDiscovery.politician_id)
            .where(PatternDiscovery.politician_id == pid)
            .order_by(PatternDiscovery.strength.desc(), PatternDiscovery.id).limit(limit).offset(offset))
    return _rows(session, stmt)


def get_anomaly(session: Session, anomaly_id: int) -> dict | None:
    """One anomaly with ``politician_name``, or None."""
    stmt = (select(*_ANOMALY, _NAME).join(Politician, Politician.id == AnomalyDetection.politician_id)
            .where(AnomalyDetection.id == anomaly_id))
    rows = _rows(session, stmt)
    return rows[0] if rows else None


def mark_investigated(session: Session, anomaly_id: int, investigated: bool = True) -> bool:
    """Set the flag; True when the anomaly exists. Touches only ``investigated`` (the app role's grant)."""
    res = session.execute(update(AnomalyDetection).where(AnomalyDetection.id == anomaly_id)
                          .values(investigated=investigated).execution_options(synchronize_session=False))
    return res.rowcount == 1


def _trade_count():
    return (select(func.count()).select_from(Trade).where(Trade.politician_id == Politician.id)
            .scalar_subquery().label("trade_count"))


def _matching(search: str):
    text = search.strip()
    if len(text) > MAX_SEARCH:
        raise ValueError(f"search: longer than {MAX_SEARCH} characters")
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return (Politician.full_name.ilike(pattern, escape="\\") | Politician.aliases.cast(Text).ilike(pattern, escape="\\")
            | (Politician.key == text))


def find_politicians(session: Session, name: str) -> list[Politician]:
    """Politicians whose name or any recorded spelling contains ``name`` (case-insensitive), as objects."""
    return list(session.scalars(select(Politician).where(_matching(name)).order_by(Politician.full_name)))


def search_politicians(session: Session, search: str | None = None, *, limit: int = 50,
                       offset: int = 0) -> list[dict]:
    """Politicians by name or any recorded spelling (all when ``search`` is empty), with ``trade_count``."""
    limit, offset = _page(limit, offset)
    stmt = select(*_POLITICIAN, _trade_count())
    if search and search.strip():
        stmt = stmt.where(_matching(search))
    return _rows(session, stmt.order_by(Politician.full_name, Politician.id).limit(limit).offset(offset))


def politician_detail(session: Session, politician_id: uuid.UUID | str, *, trades_limit: int = 100,
                      trades_offset: int = 0, ticker: str | None = None) -> dict:
    """One politician: who, a page of trades (newest first; of one ``ticker`` when given), and every finding."""
    trades_limit, trades_offset = _page(trades_limit, trades_offset)
    pid = politician_uuid(politician_id)
    person = _rows(session, select(*_POLITICIAN, _trade_count()).where(Politician.id == pid))
    if not person:
        raise LookupError(f"politician_id: no politician with id {pid}")
    trades = select(*_TRADE).where(Trade.politician_id == pid).order_by(Trade.transaction_date.desc(),
                                                                          Trade.id.desc())
    if ticker is not None:
        trades = trades.where(Trade.ticker == _kind("ticker", ticker).upper())
    anomalies = (select(*_ANOMALY, _NAME).join(Politician, Politician.id == AnomalyDetection.politician_id)
                 .where(AnomalyDetection.politician_id == pid)
                 .order_by(AnomalyDetection.severity.desc(), AnomalyDetection.id))
    return {"politician": person[0],
            "trades": _rows(session, trades.limit(trades_limit).offset(trades_offset)),
            "patterns": politician_discoveries(session, pid, limit=MAX_LIMIT),
            "anomalies": _rows(session, anomalies),
            "network": network_discoveries(session, politician_id=pid, limit=MAX_LIMIT)}


def network_discoveries(session: Session, *, network_type: str | None = None,
                        politician_id: uuid.UUID | str | None = None, min_strength: float | None = None,
                        limit: int = 50, offset: int = 0) -> list[dict]:
    """Co-trading pairs and communities, strongest first, each with ``member_names``."""
    limit, offset = _page(limit, offset)
    stmt = select(*_NETWORK)
    if network_type is not None:
        stmt = stmt.where(NetworkDiscovery.network_type == network_type)
    if politician_id is not None:
        stmt = stmt.where(NetworkDiscovery.members.contains([str(politician_uuid(politician_id))]))
    if min_strength is not None:
        stmt = stmt.where(NetworkDiscovery.strength > _threshold("min_strength", min_strength))
    rows = _rows(session, stmt.order_by(NetworkDiscovery.strength.desc(), NetworkDiscovery.id)
                 .limit(limit).offset(offset))
    ids = {m for r in rows for m in r["members"]}
    names = dict(session.execute(select(Politician.id, Politician.full_name)
                                 .where(Politician.id.in_([uuid.UUID(m) for m in ids]))).all()) if ids else {}
    for r in rows:
        r["member_names"] = [names.get(uuid.UUID(m)) for m in r["members"]]
    return rows


def experiments(session: Session, *, limit: int = 50, offset: int = 0) -> list[dict]:
    """Model experiments, newest first (seed 002's monitoring order)."""
    limit, offset = _page(limit, offset)
    return _rows(session, select(*_EXPERIMENT).order_by(ModelExperiment.experiment_date.desc(),
                                                        ModelExperiment.id.desc()).limit(limit).offset(offset))
