"""A SIGKILLed notify worker loses nothing and duplicates nothing (real Celery workers, real receiver)."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import text

from tests.support import WorkerProcess

from .helpers import deliveries, raise_, subscribe
from .receivers import Behaviour, WebhookReceiver

N = 30
WORKER_ENV = {"QUANTPIPE_NOTIFY_LEASE_SECONDS": "3", "QUANTPIPE_NOTIFY_TIMEOUT_SECONDS": "2",
              "QUANTPIPE_NOTIFY_BACKOFF_SECONDS": "0.2", "QUANTPIPE_NOTIFY_BACKOFF_CAP_SECONDS": "1",
              "QUANTPIPE_NOTIFY_SENDERS": "2"}


def _beat(app, stop: threading.Event) -> None:
    """What beat does for the notify pool (notify.dispatch every poll period), faster."""
    while not stop.wait(0.5):
        app.send_task("notify.dispatch", kwargs={"budget_seconds": 5.0}, expires=2.0)


def _wait_open_attempt(engine, worker: WorkerProcess, timeout: float) -> bool:
    """True once an attempt written by one of ``worker``'s processes (worker = host:pid) is unfinished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as c:
            pids = [str(p) for p in worker.pids()]
            if c.execute(text("SELECT count(*) FROM notification_attempts WHERE finished_at IS NULL "
                              "AND split_part(worker, ':', 2) = ANY(:p)"), {"p": pids}).scalar():
                return True
        time.sleep(0.02)
    return False


@pytest.mark.slow
def test_killed_worker_loses_and_duplicates_nothing(notify_db, engine, celery_app):
    env = {**os.environ, **WORKER_ENV}
    with WebhookReceiver(Behaviour(delay=0.4)) as rx:
        subscribe(rx.url, "*")
        for i in range(N):
            raise_("pipeline.dead_letters", f"kill:{i}")
        stop = threading.Event()
        ticker = threading.Thread(target=_beat, args=(celery_app, stop), daemon=True)
        first = WorkerProcess("notify", env=env, name="notify-victim").start()
        ticker.start()
        try:
            assert rx.wait(lambda r: len(r.requests) >= 8, 60), "nothing was delivered"
            # the session's own notify worker takes dispatches too: kill when *this* worker is mid-send
            assert _wait_open_attempt(engine, first, 60), "the first worker never had an attempt in flight"
            first.kill()  # SIGKILL to the whole process group, mid-request
            killed_at = len(rx.requests)
            with WorkerProcess("notify", env=env, name="notify-heir"):
                assert rx.wait(lambda r: len(r.accepted) >= N, 90), f"only {len(rx.accepted)} of {N} arrived"
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and any(d["status"] != "delivered" for d in deliveries(engine)):
                    time.sleep(0.2)
        finally:
            stop.set()
            ticker.join()
            first.stop()
        assert killed_at < N, "the kill came after everything was sent: it proved nothing"
        rows = deliveries(engine)
        assert len(rows) == N and all(d["status"] == "delivered" for d in rows)
        assert set(rx.accepted) == {d["key"] for d in rows}           # nothing lost
        with engine.connect() as c:
            interrupted = dict(c.execute(text(
                "SELECT CAST(d.idempotency_key AS text), count(*) FROM notification_attempts a "
                "JOIN notification_deliveries d ON d.id = a.delivery_id "
                "WHERE a.error LIKE 'interrupted%' GROUP BY 1")).all())
            delivered_twice = c.execute(text(
                "SELECT count(*) FROM (SELECT delivery_id FROM notification_attempts WHERE http_status = 200 "
                "GROUP BY delivery_id HAVING count(*) > 1) x")).scalar()
        assert interrupted, "no attempt was in flight when the worker died"
        assert delivered_twice == 0  # we never re-send what we recorded as delivered
        # The only re-sends are of attempts the dead worker never got to record, and they carry the
        # same Idempotency-Key, so the receiver (deduping on it) accepted each alert exactly once.
        for key, n in Counter(r.key for r in rx.requests).items():
            assert n - 1 <= interrupted.get(key, 0), (key, n)
