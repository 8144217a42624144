"""Upserts of findings on their natural keys. A row is rewritten only when a value changed,
so re-running a scan leaves ``updated_at`` (and everything else) untouched. The main app's
``investigated`` flag is never overwritten by a scan."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from sqlalchemy import func, or_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared_models.models.discovery import (AnomalyDetection, ModelExperiment, NetworkDiscovery, PatternDiscovery,
                                           Politician)

from .findings import Finding, clean_json

if TYPE_CHECKING:  # experiment imports statsmodels, which a politician's scan does not need
    from .experiment import ExperimentResult


def _upsert(session: Session, model, rows: list[dict], key: list[str], compare: list[str]) -> int:
    if not rows:
        return 0
    table = model.__table__
    stmt = insert(table).values(rows)
    changed = or_(*[table.c[c].is_distinct_from(stmt.excluded[c]) for c in compare])
    stmt = stmt.on_conflict_do_update(
        index_elements=key, set_={**{c: stmt.excluded[c] for c in compare}, "updated_at": func.now()},
        where=changed)
    return session.execute(stmt).rowcount


def _common(f: Finding, type_column: str) -> dict:
    return {type_column: f.kind, "subject": f.subject, "confidence": f.confidence, "description": f.description,
            "parameters": clean_json(f.parameters), "evidence": clean_json(f.evidence)}


COMPARED = ["confidence", "description", "parameters", "evidence"]


def save_patterns(session: Session, politician_id: str, findings: Iterable[Finding]) -> int:
    rows = [{**_common(f, "pattern_type"), "politician_id": politician_id, "strength": f.score} for f in findings]
    return _upsert(session, PatternDiscovery, rows, ["politician_id", "pattern_type", "subject"],
                   ["strength", *COMPARED])


def save_anomalies(session: Session, politician_id: str, findings: Iterable[Finding]) -> int:
    rows = [{**_common(f, "anomaly_type"), "politician_id": politician_id, "severity": f.score} for f in findings]
    return _upsert(session, AnomalyDetection, rows, ["politician_id", "anomaly_type", "subject"],
                   ["severity", *COMPARED])


def alert_critical(session: Session, politician_id: str, threshold: float) -> int:
    """``anomaly.critical`` for each uninvestigated anomaly at or above ``threshold``, in the scan's transaction.
    Keyed by the anomaly's id, so an anomaly is announced once however often it is re-scanned; returns how
    many were new."""
    from sqlalchemy import select

    from shared_models.notifications import raise_alert

    a = AnomalyDetection
    rows = session.execute(select(a.id, a.anomaly_type, a.subject, a.severity, a.confidence, a.description,
                                  Politician.full_name).join(Politician, Politician.id == a.politician_id)
                           .where(a.politician_id == politician_id, a.severity >= threshold, a.investigated.is_(False))
                           .order_by(a.id)).all()
    return sum(not raise_alert(session, "anomaly.critical", f"anomaly:{r.id}", f"{r.full_name}: {r.anomaly_type}",
                               {"anomaly_id": r.id, "politician_id": str(politician_id), "politician_name": r.full_name,
                                "anomaly_type": r.anomaly_type, "subject": r.subject, "severity": r.severity,
                                "confidence": r.confidence, "description": r.description,
                                "threshold": threshold}).duplicate for r in rows)


def save_network(session: Session, findings: Iterable[Finding]) -> int:
    rows = [{**_common(f, "network_type"), "members": list(f.members), "strength": f.score} for f in findings]
    return _upsert(session, NetworkDiscovery, rows, ["network_type", "subject"], ["members", "strength", *COMPARED])


def save_experiments(session: Session, results: Iterable[ExperimentResult]) -> int:
    rows = [{"model_name": r.name, "params_hash": r.params_hash, "parameters": clean_json(r.parameters),
             "metrics": clean_json(r.metrics), "deployment_ready": r.deployment_ready,
             "description": r.description} for r in results]
    return _upsert(session, ModelExperiment, rows, ["model_name", "params_hash"],
                   ["parameters", "metrics", "deployment_ready", "description"])
