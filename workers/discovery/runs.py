"""Scan runs in PostgreSQL: which politicians of a full scan are done, and who sends the network step.

Why not only the chord: kombu's Redis transport pops a message, then records it as unacked
in a second round trip, so a message in hand when Redis goes away is lost for good; a
chord missing one header task never calls back. Here each part is marked done in the
transaction that wrote its findings, the last part to finish claims the network step
under the run's row lock (exactly one claimant), and :func:`overdue` finds what a lost
message left undone (``discovery.reconcile``). Re-sending is safe: every task upserts.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session


def start(session: Session, politician_ids: list[str]) -> str:
    """Record a run of these politicians (one part each); its id as a string."""
    run_id = session.execute(text("INSERT INTO discovery_scan_runs (politicians) VALUES (:n) RETURNING id::text"),
                             {"n": len(politician_ids)}).scalar_one()
    session.execute(text("INSERT INTO discovery_scan_parts (run_id, politician_id) "
                         "SELECT :r, p FROM unnest(CAST(:ids AS uuid[])) AS p ON CONFLICT DO NOTHING"),
                    {"r": run_id, "ids": list(politician_ids)})
    return run_id


def finish_part(session: Session, run_id: str, politician_id: str, written: int | None,
                error: str | None) -> bool:
    """Mark a part done (first finish wins; a re-run changes nothing). True when this call claimed
    the run's network step: every part is done and nobody had claimed it.

    The run row is locked first, so two parts finishing together are serialized: the second
    sees the first's part done (READ COMMITTED takes a new snapshot per statement) and exactly
    one of them claims. The lock is held only until the caller's commit."""
    if session.execute(text("SELECT 1 FROM discovery_scan_runs WHERE id = :r FOR UPDATE"),
                       {"r": run_id}).first() is None:
        return False  # the run was deleted: nothing to record
    session.execute(text("UPDATE discovery_scan_parts SET done_at = now(), written = :w, error = :e "
                         "WHERE run_id = :r AND politician_id = :p AND done_at IS NULL"),
                    {"r": run_id, "p": politician_id, "w": written, "e": error})
    return _claim_network(session, run_id)


def _claim_network(session: Session, run_id: str) -> bool:
    return session.execute(text("""
        UPDATE discovery_scan_runs SET network_sent_at = now()
        WHERE id = :r AND network_sent_at IS NULL AND network_done_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM discovery_scan_parts WHERE run_id = :r AND done_at IS NULL)
        RETURNING id"""), {"r": run_id}).first() is not None


def totals(session: Session, run_id: str) -> dict:
    """What the parts of a run add up to (the per-politician half of ``scan all``'s summary)."""
    row = session.execute(text("""
        SELECT count(*), count(done_at), count(error), coalesce(sum(written), 0)
        FROM discovery_scan_parts WHERE run_id = :r"""), {"r": run_id}).one()
    return {"politicians": row[0], "done": row[1], "errors": row[2], "written": int(row[3])}


def network_done(session: Session, run_id: str) -> dict | None:
    """The stored summary when the run's network step already ran (a duplicate then does nothing)."""
    row = session.execute(text("SELECT network_done_at, summary FROM discovery_scan_runs WHERE id = :r"),
                          {"r": run_id}).first()
    return None if row is None or row[0] is None else (row[1] or {})


def finish_network(session: Session, run_id: str, summary: dict) -> None:
    """Set ``network_done_at`` and the summary once (a later duplicate keeps the first)."""
    session.execute(text("""
        UPDATE discovery_scan_runs SET network_done_at = coalesce(network_done_at, now()),
               network_sent_at = coalesce(network_sent_at, now()), summary = coalesce(summary, CAST(:s AS jsonb))
        WHERE id = :r"""), {"r": run_id, "s": json.dumps(summary, default=str)})


def overdue(session: Session, grace_seconds: float) -> list[tuple[str, list[str]]]:
    """Runs without progress for ``grace_seconds`` and what to re-send: ``(run_id, politician ids)``,
    or ``(run_id, [])`` for the network step when every part is done. Progress is the latest of
    start, a part done, the network claim and the last reconcile, so a long queue that is still
    draining is left alone. Locked rows are skipped (a concurrent reconcile or finishing part);
    each returned run is stamped ``reconciled_at``, so it is re-sent at most once per grace period."""
    runs = session.execute(text("""
        SELECT r.id::text FROM discovery_scan_runs r
        WHERE r.network_done_at IS NULL
          AND greatest(r.started_at, r.reconciled_at, r.network_sent_at,
                       (SELECT max(p.done_at) FROM discovery_scan_parts p WHERE p.run_id = r.id))
              < now() - make_interval(secs => :g)
        ORDER BY r.started_at FOR UPDATE OF r SKIP LOCKED"""), {"g": float(grace_seconds)}).scalars().all()
    out = []
    for run_id in runs:
        missing = session.execute(text("SELECT politician_id::text FROM discovery_scan_parts "
                                       "WHERE run_id = :r AND done_at IS NULL ORDER BY politician_id"),
                                  {"r": run_id}).scalars().all()
        session.execute(text("UPDATE discovery_scan_runs SET reconciled_at = now(), "
                             "network_sent_at = CASE WHEN :net THEN now() ELSE network_sent_at END WHERE id = :r"),
                        {"r": run_id, "net": not missing})
        out.append((run_id, list(missing)))
    return out


def progress(session: Session, run_id: str) -> dict | None:
    """A run's progress for the CLI: parts done of all, and the summary once the network step ran."""
    row = session.execute(text("SELECT politicians, network_done_at, summary FROM discovery_scan_runs "
                               "WHERE id = :r"), {"r": run_id}).first()
    if row is None:
        return None
    done = session.execute(text("SELECT count(done_at) FROM discovery_scan_parts WHERE run_id = :r"),
                           {"r": run_id}).scalar_one()
    return {"politicians": row[0], "done": done, "finished": row[1] is not None, "summary": row[2]}


def as_run_id(value) -> str:
    """A run id from a message (a UUID string), or ValueError."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError
    return str(uuid.UUID(value))
