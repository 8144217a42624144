"""The demo's stand-in for TickStockAppV2's event consumer, in a process of its own.

It subscribes to ``tickstock.events.patterns`` and logs one EVENT_RECEIVED checkpoint per flow
(DESIGN §4's flow log), timestamped when the event was read off the subscription, as a consumer
that logs on receipt would: a flow's latency in ``pattern_flow_analysis`` is PATTERN_PUBLISHED
-> receipt. The rows are written in batches by a second thread; the batch's INSERT is the
consumer's bookkeeping, not part of the event's trip, so it does not move the timestamp.

Its own process (issue #13): as a thread of the demo's process, the listener shared the GIL with
the simulated users, the trader and the replay, and an event waited up to ~165 ms (p99) just to
be read; then up to ~150 ms more for the batch INSERT whose clock stamped the row.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time

from sqlalchemy import text

CHANNEL = "tickstock.events.patterns"

# Exactly the rows ``log_integration_event(flow, 'pattern_detected', 'TickStockAppV2',
# 'EVENT_RECEIVED', 'tickstock.events.patterns')`` writes per flow (latency from the flow's first
# earlier checkpoint, NULL without one), set-based, with the receipt time as the timestamp instead
# of the INSERT's clock (tests/cli/test_demo_received.py compares both).
RECEIVED_SQL = text("""
INSERT INTO integration_events (flow_id, timestamp, event_type, source_system, checkpoint, channel, latency_ms)
SELECT x.f, to_timestamp(x.at), 'pattern_detected', 'TickStockAppV2', 'EVENT_RECEIVED', 'tickstock.events.patterns',
       CASE WHEN s.start IS NULL THEN NULL
            ELSE round((extract(epoch FROM (to_timestamp(x.at) - s.start)) * 1000)::numeric, 2) END
FROM unnest(CAST(:flows AS uuid[]), CAST(:at AS float8[])) AS x(f, at)
LEFT JOIN (SELECT e.flow_id, min(e.timestamp) AS start FROM integration_events e
           WHERE e.flow_id = ANY(CAST(:flows AS uuid[])) GROUP BY e.flow_id) s ON s.flow_id = x.f
""")


def log_received(conn, flows: list[str], at: list[float]) -> None:
    """EVENT_RECEIVED rows for ``flows`` received at ``at`` (epoch seconds), in the caller's transaction."""
    conn.execute(RECEIVED_SQL, {"flows": flows, "at": at})


class Consumer:
    """Starts and stops the consumer process; ``received`` counts the checkpoints it wrote."""

    def __init__(self, db_url: str, redis_url: str):
        ctx = mp.get_context("spawn")  # never fork a process that runs threads
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self._count = ctx.Value("q", 0)
        self._proc = ctx.Process(target=_main, name="demo-consumer", daemon=True,
                                 args=(db_url, redis_url, self._ready, self._stop, self._count))

    def start(self, timeout: float = 30.0) -> bool:
        """Start it and wait until it is subscribed (False: it did not come up in ``timeout``)."""
        self._proc.start()
        return self._ready.wait(timeout)

    @property
    def received(self) -> int:
        return int(self._count.value)

    def stop(self, timeout: float = 15.0) -> int:
        """Let it read what is already on its subscription, write it, and exit; checkpoints written."""
        self._stop.set()
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        return self.received


def _main(db_url: str, redis_url: str, ready, stop, count) -> None:
    import orjson
    import redis
    from sqlalchemy import create_engine

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the demo, which stops us
    parent = os.getppid()
    engine = create_engine(db_url, pool_size=1, max_overflow=0)
    client = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=10)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    while pubsub.get_message(timeout=1.0) is None and not pubsub.subscribed:  # the confirmation
        pass
    pending: list[tuple[str, float]] = []
    lock = threading.Lock()
    reading = threading.Event()
    reading.set()

    def write() -> None:
        while reading.is_set() or pending:
            with lock:
                batch, pending[:] = list(pending), []
            if not batch:
                time.sleep(0.005)
                continue
            with engine.begin() as conn:
                # a receipt checkpoint, not a business row: the next batch need not wait for its fsync
                conn.execute(text("SET LOCAL synchronous_commit = off"))
                log_received(conn, [f for f, _ in batch], [t for _, t in batch])
            with count.get_lock():
                count.value += len(batch)

    writer = threading.Thread(target=write, name="demo-consumer-writer", daemon=True)
    writer.start()
    ready.set()
    try:
        while True:
            msg = pubsub.get_message(timeout=0.2)
            if os.getppid() != parent:
                break  # the demo is gone
            if msg is None:
                if stop.is_set():
                    break  # stopped, and nothing left on the subscription
                continue
            at = time.time()
            if msg.get("type") != "message":
                continue
            try:
                flow = orjson.loads(msg["data"]).get("flow_id")
            except (ValueError, AttributeError):
                continue
            if flow:
                with lock:
                    pending.append((str(flow), at))
    finally:
        reading.clear()
        writer.join(30)
        pubsub.close()
        engine.dispose()
