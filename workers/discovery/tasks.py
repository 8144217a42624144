"""Celery tasks of the discovery pool: thin bodies that call the pool's pure logic.

A full scan is a run recorded in PostgreSQL (``runs``): one ``discovery.scan_politician(id,
run_id)`` per politician, each marking its part done with its findings; the last to finish
sends ``discovery.scan_network(run_id=...)`` (cross-member network and the copy-trading
experiments); ``discovery.reconcile`` re-sends what a lost message left undone. Every task
upserts on natural keys, so redelivery after a crash, or running the scan again, changes nothing.

The analyses (``scan``: numpy, pandas, scipy.special; the network step adds networkx; its OLS and
q-values are numpy, ``regress``) are imported by the task bodies, not here: a worker that starts, pings or only fans out
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

from . import runs

logger = logging.getLogger(__name__)


ping = ping_task("discovery")
prune = prune_task("discovery")


def _dead_letter(task: str, field: str, reason: str, payload: dict, part: tuple[str, str] | None = None) -> bool:
    """Keep bad input (the discovery role may INSERT into dead_letters; if a deployment's role cannot, log it).

    ``part`` = (run_id, politician_id): that part of a run is marked done (with the error) in the
    same transaction. True when this claimed the run's network step."""
    try:
        with unit_of_work() as s:
            dead_letters.keep(s, "discovery", task, reason, payload, field=field)
            return part is not None and runs.finish_part(s, *part, None, reason)
    except sqlalchemy.exc.ProgrammingError as exc:
        logger.error("%s: %s (payload %s); dead letter not written: %s", task, reason, payload, exc.orig)
    if part is None:
        return False
    with unit_of_work() as s:
        return runs.finish_part(s, *part, None, reason)


def _send_network(run_id: str) -> None:
    """After the commit that claimed it; if Redis refuses now, ``discovery.reconcile`` sends it later."""
    try:
        scan_network.apply_async(kwargs={"run_id": run_id})
    except Exception:  # noqa: BLE001 - the claim is committed; reconcile re-sends after the grace period
        logger.exception("discovery: network step of run %s not sent (reconcile will)", run_id)


@app.task(name="discovery.scan_politician", ignore_result=False)
def scan_politician(politician_id, run_id=None) -> dict:
    """All per-person analyses of one politician (its UUID, as a string), in one transaction;
    with ``run_id``, that run's part is marked done in the same transaction, and the last part
    to finish sends the run's network step."""
    from . import scan  # numpy, pandas, scipy.special: at first use, not at worker start

    try:
        if not isinstance(politician_id, str) or len(politician_id) > 64:
            raise ValueError
        pid = str(uuid.UUID(politician_id))
    except ValueError:
        reason = f"politician_id: expected a UUID string, got {str(politician_id)[:80]!r}"
        _dead_letter("discovery.scan_politician", "politician_id", reason, {"politician_id": politician_id})
        return {"politician_id": politician_id, "error": reason}
    try:
        run = None if run_id is None else runs.as_run_id(run_id)
    except ValueError:
        reason = f"run_id: expected a UUID string, got {str(run_id)[:80]!r}"
        _dead_letter("discovery.scan_politician", "run_id", reason, {"politician_id": pid, "run_id": run_id})
        return {"politician_id": pid, "error": reason}
    part = None if run is None else (run, pid)
    try:
        with unit_of_work() as s:
            out = scan.scan_politician(s, pid, get_settings().discovery).as_dict()
            last = part is not None and runs.finish_part(s, run, pid, out["written"], None)
    except scan.UnknownPolitician as exc:
        last = _dead_letter("discovery.scan_politician", "politician_id", str(exc), {"politician_id": pid}, part)
        out = {"politician_id": pid, "error": str(exc)}
    except Exception as exc:
        if is_transient(exc):
            raise  # a server restart: PipelineTask retries the whole (rolled back) scan
        # Over the time limit, or data an analysis cannot take: this politician is kept as a dead
        # letter and answered as an error, so the network step still runs for everyone.
        logger.exception("discovery.scan_politician %s failed", pid)
        reason = f"politician_id: scan failed: {type(exc).__name__}: {exc}"[:500]
        last = _dead_letter("discovery.scan_politician", "politician_id", reason, {"politician_id": pid}, part)
        out = {"politician_id": pid, "error": reason}
    if last:
        _send_network(run)
    return out


@app.task(name="discovery.scan_network", ignore_result=False)
def scan_network(results: list | None = None, run_id=None) -> dict:
    """The co-trading network and the experiments, after every member is scanned: a run's last step
    (``run_id``; a duplicate returns the stored summary), or the callback (``results``) of a chord
    sent before ``scan_chord`` ran the network step as a header task (``scan_finish`` now)."""
    from . import scan

    try:
        run = None if run_id is None else runs.as_run_id(run_id)
    except ValueError:
        reason = f"run_id: expected a UUID string, got {str(run_id)[:80]!r}"
        _dead_letter("discovery.scan_network", "run_id", reason, {"run_id": run_id})
        return {"error": reason}
    with unit_of_work() as s:
        if run is not None and (stored := runs.network_done(s, run)) is not None:
            return stored
        out = scan.scan_network(s, get_settings().discovery)
        if run is not None:
            t = runs.totals(s, run)
            out.update(politicians=t["politicians"], errors=t["errors"], findings_written=t["written"] + out["written"],
                       run_id=run)
            runs.finish_network(s, run, out)
            return out
    return _chord_summary(out, results or [])


def _chord_summary(network: dict, results: list) -> dict:
    """The network step's summary with the politicians' results added up (a chord's answer)."""
    done = [r for r in results if isinstance(r, dict) and "politician_id" in r]
    return {**network, "politicians": len(done), "errors": sum(1 for r in done if "error" in r),
            "findings_written": sum(r.get("written", 0) for r in done) + network["written"]}


@app.task(name="discovery.scan_cross", ignore_result=False)
def scan_cross() -> dict:
    """The network step as a header task of ``scan_chord``: it reads every politician's trades, not
    their scans' findings, so it runs beside the per-politician tasks instead of after them."""
    from . import scan

    with unit_of_work() as s:
        return scan.scan_network(s, get_settings().discovery)


@app.task(name="discovery.scan_finish", ignore_result=False)
def scan_finish(results: list) -> dict:
    """``scan_chord``'s callback: the header's answers (``scan_cross``'s and each politician's) summed."""
    network = next(r for r in results if isinstance(r, dict) and "network_findings" in r)
    return _chord_summary(network, results)


def politician_ids() -> list[str]:
    """Every politician's id (UUID strings: what a task message carries), in natural-key order."""
    with unit_of_work() as s:
        return [r[0] for r in s.execute(text("SELECT id::text FROM politicians ORDER BY key"))]


def scan_chord(ids: list[str]):
    """A chord of these politicians (not yet applied), for ad-hoc scans and benchmarks:
    ``scan_chord(ids).apply_async()``. The network step is its first header task (sent first, so one
    process runs it while the others scan politicians); the callback only adds up. Not recorded as
    a run, so not reconciled."""
    return chord(group([scan_cross.s(), *(scan_politician.s(i) for i in ids)]), scan_finish.s())


def start_scan(ids: list[str] | None = None) -> dict:
    """Record a run (every politician, or ``ids``) and send one task per politician; the last to
    finish sends the network step. Sent after the commit: a message lost on the way is re-sent
    by ``discovery.reconcile``."""
    ids = politician_ids() if ids is None else list(ids)
    if not ids:
        return {"politicians": 0}
    with unit_of_work() as s:
        run_id = runs.start(s, ids)
    for pid in ids:
        scan_politician.apply_async((pid, run_id))
    return {"politicians": len(ids), "run_id": run_id}


@app.task(name="discovery.scan_all", ignore_result=False)
def scan_all() -> dict:
    """Beat entry point: a recorded run of every politician (``start_scan``)."""
    return start_scan()


def reconcile_grace(settings) -> float:
    """DISCOVERY_RECONCILE_GRACE_SECONDS, or (0) longer than a task can run plus Redis's redelivery of
    an unacked one: a part still queued, running or about to be redelivered is never re-sent early."""
    grace = settings.discovery.reconcile_grace_seconds
    return float(grace or settings.task_time_limit + settings.visibility_timeout + 60)


@app.task(name="discovery.reconcile", ignore_result=False)
def reconcile() -> dict:
    """Beat (DISCOVERY_RECONCILE_SECONDS): re-send what stalled runs lack, the politicians not done
    or the network step (``runs.overdue``). Idempotent: a re-sent task upserts what it finds."""
    with unit_of_work() as s:
        todo = runs.overdue(s, reconcile_grace(get_settings()))
    resent, networks = 0, 0
    for run_id, missing in todo:
        logger.warning("discovery.reconcile: run %s stalled; re-sending %s", run_id,
                       f"{len(missing)} politician(s)" if missing else "the network step")
        for pid in missing:
            scan_politician.apply_async((pid, run_id))
        if not missing:
            scan_network.apply_async(kwargs={"run_id": run_id})
        resent, networks = resent + len(missing), networks + (not missing)
    return {"runs": len(todo), "politicians_resent": resent, "networks_sent": networks}
