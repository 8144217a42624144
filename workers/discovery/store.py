"""Upserts of findings on their natural keys. A row is rewritten only when a value changed,
so re-running a scan leaves ``updated_at`` (and everything else) untouched. The main app's
``investigated`` flag is never overwritten by a scan."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Iterable

from sqlalchemy import func, or_, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared_models.models.discovery import ModelExperiment, NetworkDiscovery

from .findings import Finding, clean_json

if TYPE_CHECKING:  # the experiment module is the network step's, which a politician's scan does not need
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


def _politician_upsert(table: str, type_column: str, score: str) -> str:
    """One politician's findings of one table as ONE statement text with one JSON parameter (``rows``: a
    JSON array of objects), the same statement for any number of rows: a multi-row ``insert().values()``
    is a different statement for each row count and was compiled again for every scan. Rows are
    inserted in array order (``ORDER BY n``), as a multi-row VALUES does; the ``ON CONFLICT`` update is
    the one ``_upsert`` writes (only when a value changed; ``investigated`` never)."""
    cols = [type_column, "subject", score, *COMPARED]
    types = {type_column: "text", "subject": "text", score: "float8", "confidence": "float8",
             "description": "text", "parameters": "jsonb", "evidence": "jsonb"}
    changed = " OR ".join(f"{table}.{c} IS DISTINCT FROM excluded.{c}" for c in [score, *COMPARED])
    return (f"INSERT INTO {table} (politician_id, {', '.join(cols)}) "
            f"SELECT CAST(:p AS uuid), {', '.join('r.' + c for c in cols)} "
            f"FROM ROWS FROM (jsonb_to_recordset(CAST(:rows AS jsonb)) AS ({', '.join(f'{c} {types[c]}' for c in cols)})) "
            f"WITH ORDINALITY AS r({', '.join(cols)}, n) ORDER BY r.n "
            f"ON CONFLICT (politician_id, {type_column}, subject) DO UPDATE SET "
            f"{', '.join(f'{c} = excluded.{c}' for c in [score, *COMPARED])}, updated_at = now() WHERE {changed}")


_PATTERNS_SQL = text(_politician_upsert("pattern_discoveries", "pattern_type", "strength"))
_ANOMALIES_SQL = text(_politician_upsert("anomaly_detections", "anomaly_type", "severity"))


def _upsert_json(session: Session, stmt, politician_id: str, rows: list[dict]) -> int:
    if not rows:
        return 0
    return session.execute(stmt, {"p": str(politician_id), "rows": json.dumps(rows)}).rowcount


def save_patterns(session: Session, politician_id: str, findings: Iterable[Finding]) -> int:
    rows = [{**_common(f, "pattern_type"), "strength": f.score} for f in findings]
    return _upsert_json(session, _PATTERNS_SQL, politician_id, rows)


def save_anomalies(session: Session, politician_id: str, findings: Iterable[Finding]) -> int:
    rows = [{**_common(f, "anomaly_type"), "severity": f.score} for f in findings]
    return _upsert_json(session, _ANOMALIES_SQL, politician_id, rows)


_CRITICAL_SQL = text("""
    SELECT a.id, a.anomaly_type, a.subject, a.severity, a.confidence, a.description, p.full_name
    FROM anomaly_detections a JOIN politicians p ON p.id = a.politician_id
    WHERE a.politician_id = CAST(:p AS uuid) AND a.severity >= :t AND a.investigated IS false
    ORDER BY a.id""")


def alert_critical(session: Session, politician_id: str, threshold: float) -> int:
    """``anomaly.critical`` for each uninvestigated anomaly at or above ``threshold``, in the scan's transaction
    (one statement for all of them). Keyed by the anomaly's id, so an anomaly is announced once however often
    it is re-scanned; returns how many were new."""
    from shared_models.notifications import raise_alerts

    rows = session.execute(_CRITICAL_SQL, {"p": str(politician_id), "t": threshold}).all()
    return sum(not r.duplicate for r in raise_alerts(session, [
        ("anomaly.critical", f"anomaly:{r.id}", f"{r.full_name}: {r.anomaly_type}",
         {"anomaly_id": r.id, "politician_id": str(politician_id), "politician_name": r.full_name,
          "anomaly_type": r.anomaly_type, "subject": r.subject, "severity": r.severity, "confidence": r.confidence,
          "description": r.description, "threshold": threshold}) for r in rows]))


def save_network(session: Session, findings: Iterable[Finding]) -> int:
    rows = [{**_common(f, "network_type"), "members": list(f.members), "strength": f.score} for f in findings]
    return _upsert(session, NetworkDiscovery, rows, ["network_type", "subject"], ["members", "strength", *COMPARED])


def save_experiments(session: Session, results: Iterable[ExperimentResult]) -> int:
    rows = [{"model_name": r.name, "params_hash": r.params_hash, "parameters": clean_json(r.parameters),
             "metrics": clean_json(r.metrics), "deployment_ready": r.deployment_ready,
             "description": r.description} for r in results]
    return _upsert(session, ModelExperiment, rows, ["model_name", "params_hash"],
                   ["parameters", "metrics", "deployment_ready", "description"])
