"""PostgreSQL and Redis restart in the middle of a full discovery scan: same result as a clean run.

Issue #9 item 5: a PostgreSQL restart mid-scan failed one politician task with
``psycopg2.DatabaseError: server closed the connection unexpectedly`` (not classified as
transient), so the chord's network/experiment step never ran. Here a private PostgreSQL is
crashed (``pg_ctl -m immediate``) and a private Redis restarted (SIGTERM, AOF) while the chord
runs on a real worker; the findings must equal those of a clean run, by retry alone.

A restart can lose the one task message being handed to a worker at that instant (kombu's
Redis transport pops it from the queue, then records it as unacked, in two round trips): the
scan is a run in PostgreSQL, and ``discovery.reconcile`` (sent here every second, as the beat
would, with a short grace period) re-sends what it lacks; the test waits for the run's
``network_done_at``, never for a Celery result. (test_reconcile.py loses a message on purpose.)
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
from sqlalchemy import text

from tests.support import PrivateStack, WorkerProcess
from tests.workers.discovery.helpers import CONGRESS, price_files

pytestmark = pytest.mark.slow
OUTPUTS = ("pattern_discoveries", "anomaly_detections", "network_discoveries", "model_experiments")


def snapshot(engine) -> dict[str, list[str]]:
    """Every output row without its surrogate id and timestamps (a re-run may not change the rest)."""
    out = {}
    with engine.connect() as c:
        for table in OUTPUTS:
            drop = c.execute(text(
                "SELECT array_agg(column_name::text) FROM information_schema.columns WHERE table_name = :t "
                "AND (column_name = 'id' OR data_type LIKE 'timestamp%%')"), {"t": table}).scalar() or []
            out[table] = sorted(c.execute(text(f"SELECT (to_jsonb(t) - CAST(:drop AS text[]))::text FROM {table} t"),
                                          {"drop": drop}).scalars())
    return out


def _wait(fn, timeout: float, what: str):
    """Call ``fn`` until it returns a value, tolerating the outages this test causes."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value is not None:
                return value
        except Exception as exc:  # noqa: BLE001 - a server is down on purpose
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last error: {last!r}")


def _run_scan(stack: PrivateStack, engine, timeout: float, during=None) -> dict:
    """Send ``discovery.scan_all`` and wait for its run's network step (``network_done_at`` in
    PostgreSQL, not a Celery result: a lost message must not leave the scan waiting forever)."""
    started = stack.app.send_task("discovery.scan_all", queue="discovery")
    run_id = started.get(timeout=120)["run_id"]
    stop = threading.Event()
    # the beat's job, every second (the worker's grace is short, see env below)
    beat = threading.Thread(target=_reconcile_every_second, args=(stack, stop), daemon=True)
    beat.start()
    try:
        if during is not None:
            during()

        def finished():
            with engine.connect() as c:
                row = c.execute(text("SELECT network_done_at, summary FROM discovery_scan_runs WHERE id = :r"),
                                {"r": run_id}).one()
            return row.summary if row.network_done_at is not None else None

        return _wait(finished, timeout, f"run {run_id}'s network step")
    finally:
        stop.set()
        beat.join(30)


def _reconcile_every_second(stack: PrivateStack, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            stack.app.send_task("discovery.reconcile", queue="discovery")
        except Exception:  # noqa: BLE001 - Redis is down on purpose
            pass


@pytest.mark.timeout(1500)
def test_full_scan_survives_a_postgres_crash_and_a_redis_restart():
    from loaders.congress import load_congress
    from loaders.prices import load_prices

    with PrivateStack(task_time_limit=60) as stack:
        engine = stack.engine()
        load_prices(engine, price_files())
        report = load_congress(engine, [CONGRESS])
        with engine.connect() as c:
            n_politicians = c.execute(text("SELECT count(*) FROM politicians")).scalar()
        # a short grace: a part with no progress for 20 s is re-sent (production: > time limit + visibility)
        worker = WorkerProcess("discovery", env={**stack.env, "DISCOVERY_RECONCILE_GRACE_SECONDS": "20"},
                               control_app=stack.app, concurrency=2, name="disc-restart").start()
        try:
            t0 = time.monotonic()
            clean = _run_scan(stack, engine, 600)
            clean_seconds = time.monotonic() - t0
            reference = snapshot(engine)
            assert clean["politicians"] == n_politicians and clean["errors"] == 0, clean
            assert all(reference[t] for t in OUTPUTS), {t: len(v) for t, v in reference.items()}
            with engine.begin() as c:
                c.execute(text(f"TRUNCATE {', '.join(OUTPUTS)}"))
            engine.dispose()

            seen = {}

            def outages() -> None:
                # PostgreSQL crashes a third of the way into the header tasks, Redis is killed later
                time.sleep(max(1.0, clean_seconds * 0.25))
                with engine.connect() as c:
                    seen["before_pg"] = c.execute(text("SELECT count(*) FROM anomaly_detections")).scalar()
                stack.postgres.restart("immediate", down_seconds=3)
                time.sleep(max(1.0, clean_seconds * 0.25))
                stack.redis.restart(signal.SIGTERM)

            restarted = _run_scan(stack, engine, 900, during=outages)
            assert worker.proc.poll() is None, "the worker died when a server went away"
        finally:
            worker.stop()
        log = worker.log_path.read_text(errors="replace")
        assert restarted["politicians"] == n_politicians and restarted["errors"] == 0, restarted
        assert snapshot(engine) == reference
        # the crash really hit running work, and retry (not luck) carried it through
        assert seen["before_pg"] < len(reference["anomaly_detections"])
        assert "Retry in" in log, log[-4000:]
        assert report.trades_inserted > 0
        engine.dispose()
