"""Celery tasks of the discovery pool: thin bodies that call the pool's pure logic.

A full scan is a chord: ``group(discovery.scan_politician(id) for each politician)``
then ``discovery.scan_network`` once all are done (cross-member network and the
copy-trading experiments). Every task upserts on natural keys, so redelivery
after a crash, or running the scan again, changes nothing.

The analyses (``scan``: numpy, pandas, scipy, statsmodels, networkx) are imported
by the task bodies, not here: a worker that starts, pings or only fans out
(``scan_all``) stays at a bare Celery worker's memory (issue #16 item 5).
"""

from __future__ import annotations

import logging
import uuid

import sqlalchemy.exc
from celery import chord, group
from sqlalchemy import text

from shared_models import dead_letters
from shared_models.db import unit_of_work
from shared_models.settings import get_settings
from workers.app import app
from workers.base import is_transient
from workers.ping import ping_task
from workers.retention import prune_task

logger = logging.getLogger(__name__)


ping = ping_task("discovery")
prune = prune_task("discovery")


def _dead_letter(task: str, field: str, reason: str, payload: dict) -> None:
    """Keep bad input (the discovery role may INSERT into dead_letters; if a deployment's role cannot, log it)."""
    try:
        with unit_of_work() as s:
            dead_letters.keep(s, "discovery", task, reason, payload, field=field)
    except sqlalchemy.exc.ProgrammingError as exc:
        logger.error("%s: %s (payload %s); dead letter not written: %s", task, reason, payload, exc.orig)


@app.task(name="discovery.scan_politician", ignore_result=False)
def scan_politician(politician_id) -> dict:
    """All per-person analyses of one politician (its UUID, as a string), in one transaction."""
    from . import scan  # numpy, pandas, scipy, statsmodels, networkx: at first use, not at worker start

    try:
        if not isinstance(politician_id, str) or len(politician_id) > 64:
            raise ValueError
        pid = str(uuid.UUID(politician_id))
    except ValueError:
        reason = f"politician_id: expected a UUID string, got {str(politician_id)[:80]!r}"
        _dead_letter("discovery.scan_politician", "politician_id", reason, {"politician_id": politician_id})
        return {"politician_id": politician_id, "error": reason}
    try:
        with unit_of_work() as s:
            return scan.scan_politician(s, pid, get_settings().discovery).as_dict()
    except scan.UnknownPolitician as exc:
        _dead_letter("discovery.scan_politician", "politician_id", str(exc), {"politician_id": pid})
        return {"politician_id": pid, "error": str(exc)}
    except Exception as exc:
        if is_transient(exc):
            raise  # a server restart: PipelineTask retries the whole (rolled back) scan
        # Over the time limit, or data an analysis cannot take: this politician is kept as a dead
        # letter and answered as an error, so the chord still runs the network step for everyone.
        logger.exception("discovery.scan_politician %s failed", pid)
        reason = f"politician_id: scan failed: {type(exc).__name__}: {exc}"[:500]
        _dead_letter("discovery.scan_politician", "politician_id", reason, {"politician_id": pid})
        return {"politician_id": pid, "error": reason}


@app.task(name="discovery.scan_network", ignore_result=False)
def scan_network(results: list | None = None) -> dict:
    """Chord callback: the co-trading network and the experiments, after every member is scanned."""
    from . import scan

    with unit_of_work() as s:
        out = scan.scan_network(s, get_settings().discovery)
    done = [r for r in (results or []) if isinstance(r, dict)]
    out.update(politicians=len(done), errors=sum(1 for r in done if "error" in r),
               findings_written=sum(r.get("written", 0) for r in done) + out["written"])
    return out


def politician_ids() -> list[str]:
    """Every politician's id (UUID strings: what a task message carries), in natural-key order."""
    with unit_of_work() as s:
        return [r[0] for r in s.execute(text("SELECT id::text FROM politicians ORDER BY key"))]


def scan_chord(ids: list[str]):
    """The chord of a full scan (not yet applied): ``scan_chord(ids).apply_async()``."""
    return chord(group(scan_politician.s(i) for i in ids), scan_network.s())


@app.task(name="discovery.scan_all", ignore_result=False)
def scan_all() -> dict:
    """Beat entry point: fan out one task per politician, then the network chord callback."""
    ids = politician_ids()
    if not ids:
        return {"politicians": 0}
    result = scan_chord(ids).apply_async()
    return {"politicians": len(ids), "chord_id": result.id, "group_id": result.parent.id if result.parent else None}
