"""Read side of the discovery pool, for the main application.

Plain functions over a Session, returning dictionaries ready for JSON. The main
app connects as ``quantpipe_app`` (SELECT on the outputs and politicians, UPDATE
on ``anomaly_detections.investigated`` only), which is all these need.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Text, select, update
from sqlalchemy.orm import Session

from .models.discovery import AnomalyDetection, ModelExperiment, NetworkDiscovery, PatternDiscovery, Politician


def _row(obj: Any, *, score: str) -> dict:
    out = {c.name: getattr(obj, c.name) for c in obj.__table__.columns}
    out["score"] = out[score]
    return out


def _with_names(session: Session, rows: list[dict]) -> list[dict]:
    ids = {r["politician_id"] for r in rows if r.get("politician_id") is not None}
    names = dict(session.execute(select(Politician.id, Politician.full_name).where(Politician.id.in_(ids))).all()) \
        if ids else {}
    for r in rows:
        r["politician"] = names.get(r.get("politician_id"))
    return rows


def recent_discoveries(session: Session, min_strength: float = 0.5, *, days: int | None = 30,
                       limit: int = 50) -> list[dict]:
    """Pattern and network discoveries with strength above ``min_strength``, newest first."""
    since = datetime.now(timezone.utc) - timedelta(days=days) if days else None
    q = select(PatternDiscovery).where(PatternDiscovery.strength > min_strength)
    n = select(NetworkDiscovery).where(NetworkDiscovery.strength > min_strength)
    if since is not None:
        q = q.where(PatternDiscovery.discovered_at >= since)
        n = n.where(NetworkDiscovery.discovered_at >= since)
    rows = [_row(p, score="strength") for p in session.scalars(q.order_by(PatternDiscovery.discovered_at.desc(),
                                                                           PatternDiscovery.strength.desc())
                                                               .limit(limit))]
    rows += [{**_row(x, score="strength"), "politician_id": None}
             for x in session.scalars(n.order_by(NetworkDiscovery.discovered_at.desc()).limit(limit))]
    rows.sort(key=lambda r: (r["discovered_at"], r["score"]), reverse=True)
    return _with_names(session, rows[:limit])


def critical_anomalies(session: Session, min_severity: float = 0.8, *, limit: int = 50) -> list[dict]:
    """Uninvestigated anomalies with severity >= ``min_severity``, most severe first."""
    q = (select(AnomalyDetection).where(AnomalyDetection.severity >= min_severity,
                                        AnomalyDetection.investigated.is_(False))
         .order_by(AnomalyDetection.severity.desc(), AnomalyDetection.id).limit(limit))
    return _with_names(session, [_row(a, score="severity") for a in session.scalars(q)])


def find_politicians(session: Session, name: str) -> list[Politician]:
    """Politicians whose name or any recorded spelling contains ``name`` (case-insensitive)."""
    pattern = f"%{name.strip()}%"
    q = select(Politician).where(Politician.full_name.ilike(pattern)
                                 | Politician.aliases.cast(Text).ilike(pattern)
                                 | (Politician.key == name.strip()))
    return list(session.scalars(q.order_by(Politician.full_name)))


def politician_discoveries(session: Session, politician_id: int) -> dict:
    """Everything found on one politician: patterns, anomalies, network links."""
    person = session.get(Politician, politician_id)
    if person is None:
        raise LookupError(f"politician_id: no politician with id {politician_id}")
    patterns = session.scalars(select(PatternDiscovery).where(PatternDiscovery.politician_id == politician_id)
                               .order_by(PatternDiscovery.strength.desc())).all()
    anomalies = session.scalars(select(AnomalyDetection).where(AnomalyDetection.politician_id == politician_id)
                                .order_by(AnomalyDetection.severity.desc())).all()
    network = session.scalars(select(NetworkDiscovery).where(NetworkDiscovery.members.contains([politician_id]))
                              .order_by(NetworkDiscovery.strength.desc())).all()
    return {"politician": {c.name: getattr(person, c.name) for c in Politician.__table__.columns},
            "patterns": [_row(p, score="strength") for p in patterns],
            "anomalies": [_row(a, score="severity") for a in anomalies],
            "network": [_row(x, score="strength") for x in network]}


def mark_investigated(session: Session, anomaly_id: int, investigated: bool = True) -> bool:
    """Set the flag; True when the anomaly exists. Touches only ``investigated`` (the app role's grant)."""
    res = session.execute(update(AnomalyDetection).where(AnomalyDetection.id == anomaly_id)
                          .values(investigated=investigated).execution_options(synchronize_session=False))
    return res.rowcount == 1


def experiments(session: Session) -> list[dict]:
    return [{c.name: getattr(e, c.name) for c in ModelExperiment.__table__.columns}
            for e in session.scalars(select(ModelExperiment).order_by(ModelExperiment.name, ModelExperiment.id))]
