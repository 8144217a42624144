"""PostgreSQL crashes, then Redis restarts, in the middle of a patterns scan: same result as a clean run.

Issue #9 item 5 for the patterns pool. A private PostgreSQL and Redis (``PrivateStack``); a real
worker runs a fan-out scan of 8 symbols' full daily history. A clean run gives the reference:
every detection (without ids and times), one PATTERN_PUBLISHED row each, every outbox row sent.
Then the same scan again with PostgreSQL crashed (``pg_ctl -m immediate``) a few symbols in, and
again with Redis restarted (SIGTERM, AOF kept) a few symbols in: the detections, checkpoints and
sent marks must equal the reference, by the tasks' retries and the relay alone; a subscriber that
stays connected sees no event twice.
"""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest
from sqlalchemy import text

from tests.support import PrivateStack
from tests.workers.patterns.helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
SYMBOLS = ["AAPL", "BA", "F", "GE", "JPM", "KO", "PFE", "XOM"]  # full daily histories: 8 keep it under a minute
SNAPSHOT = ("SELECT symbol, pattern, tier, bar_ts::text, confidence, current_price, price_change, volume, "
            "indicators::text FROM pattern_detections ORDER BY 1, 2, 3, 4")


def _wait(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - a server is down on purpose
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last error: {last!r}")


def _state(engine) -> dict:
    with engine.connect() as c:
        return {"detections": c.execute(text(SNAPSHOT)).all(),
                "published_rows": c.execute(text("SELECT count(*) FROM integration_events "
                                                 "WHERE checkpoint = 'PATTERN_PUBLISHED'")).scalar(),
                "unsent": c.execute(text("SELECT count(*) FROM pattern_outbox WHERE sent_at IS NULL")).scalar(),
                "outbox": c.execute(text("SELECT count(*) FROM pattern_outbox")).scalar()}


def _scanned(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM pattern_scan_state WHERE tier = 'daily'")).scalar()


class _Subscriber(threading.Thread):
    """Counts flow ids seen; reconnects after a Redis restart (events meanwhile stay in the outbox)."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.seen, self.stop = url, {}, threading.Event()

    def run(self) -> None:
        import redis

        while not self.stop.is_set():
            try:
                sub = redis.Redis.from_url(self.url, socket_timeout=2).pubsub(ignore_subscribe_messages=True)
                sub.subscribe("tickstock.events.patterns")
                while not self.stop.is_set():
                    m = sub.get_message(timeout=0.2)
                    if m and m["type"] == "message":
                        f = json.loads(m["data"])["flow_id"]
                        self.seen[f] = self.seen.get(f, 0) + 1
            except Exception:  # noqa: BLE001 - Redis restarting
                time.sleep(0.3)


def _run(stack, engine, fault=None) -> tuple[dict, dict]:
    with engine.begin() as c:
        c.execute(text("TRUNCATE pattern_outbox, pattern_detections, pattern_scan_state, integration_events"))
    sub = _Subscriber(stack.redis_url)
    sub.start()
    time.sleep(0.5)
    stack.app.send_task("patterns.scan", kwargs={"symbols": SYMBOLS, "tier": "daily", "incremental": False},
                        queue="patterns")
    hit = None
    if fault is not None:
        _wait(lambda: _scanned(engine) >= 3, 300, "three symbols scanned")
        hit = _scanned(engine)
        fault()
    _wait(lambda: _scanned(engine) == len(SYMBOLS), 900, "every symbol scanned")
    # what beat's relay-outbox entry does every 2 s: publish whatever an outage held back
    _wait(lambda: stack.app.send_task("patterns.relay_outbox", queue="patterns").get(timeout=60) is not None
          and _state(engine)["unsent"] == 0, 300, "the outbox relayed")
    time.sleep(1.0)
    sub.stop.set()
    sub.join(5)
    return _state(engine), {"seen": sub.seen, "scanned_before_fault": hit}


def test_scan_survives_a_postgres_crash_and_a_redis_restart():
    from loaders.prices import load_prices

    with PrivateStack(task_time_limit=120) as stack:
        engine = stack.engine()
        load_prices(engine, [ROOT / "data/prices/daily" / f"{s}.csv.gz" for s in SYMBOLS])
        worker = stack.worker("patterns", concurrency=1, name="patterns-restart").start()
        try:
            reference, clean = _run(stack, engine)
            assert len(reference["detections"]) > 1_000 * len(SYMBOLS) and reference["unsent"] == 0, len(reference["detections"])
            assert reference["published_rows"] == reference["outbox"] == len(reference["detections"])
            assert sorted(set(clean["seen"].values())) == [1]

            after_pg, pg = _run(stack, engine, lambda: stack.postgres.restart("immediate", down_seconds=3))
            assert after_pg == reference
            assert pg["scanned_before_fault"] < len(SYMBOLS), "the crash came after the scan"
            assert max(pg["seen"].values()) == 1, "an event was published twice"

            after_redis, rd = _run(stack, engine, lambda: stack.redis.restart(signal.SIGTERM))
            assert after_redis == reference
            assert rd["scanned_before_fault"] < len(SYMBOLS)
            assert max(rd["seen"].values()) == 1, "an event was published twice"
            assert worker.proc.poll() is None, "the worker died when a server went away"
        finally:
            worker.stop()
        log = worker.log_path.read_text(errors="replace")
        assert "Retry in" in log, log[-4000:]  # retry, not luck, carried the scan through the crash
        engine.dispose()
