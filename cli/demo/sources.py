"""The demo's sources: each drives one pool through its public interface, in a thread.

- patterns: the replay sends one ``patterns.on_bars`` task per trading day (the universe's
  bars of that day) at ``speed`` days per second, never more than ``LAG`` ticks ahead of the
  pool; a consumer of ``tickstock.events.patterns`` in its own process (``consumer``) logs
  EVENT_RECEIVED for every event (so flows have a latency), and a listener here hands each event
  to the shadow trader;
- shadow: ``traders.Trader`` sends closed trades to ``shadow.record_trades`` as the replay
  plays their exit bars;
- ingest: ``users.Users`` through ``ShadowWatch``;
- discovery: a recorded ``scan all`` run (as ``quantpipe scan all``), once at the start.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field

from sqlalchemy import text

LAG = 3  # on_bars ticks in flight at most: the replay never runs ahead of the patterns pool

COUNTS = {
    "detections": "SELECT count(*) FROM pattern_detections",
    "published": "SELECT count(*) FROM integration_events WHERE checkpoint = 'PATTERN_PUBLISHED'",
    "ingest_events": "SELECT count(*) FROM ingest_events",
    "findings": "SELECT (SELECT count(*) FROM pattern_discoveries) + (SELECT count(*) FROM anomaly_detections)"
                " + (SELECT count(*) FROM network_discoveries) + (SELECT count(*) FROM model_experiments)",
    "shadow_trades": "SELECT count(*) FROM shadow_trades",
    "shadow_evaluations": "SELECT count(*) FROM shadow_evaluations",
}


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {k: int(conn.execute(text(q)).scalar_one()) for k, q in COUNTS.items()}


@dataclass
class PatternStats:
    ticks: int = 0
    bars: int = 0
    new: int = 0
    published: int = 0
    received: int = 0
    tick_ms: list[float] = field(default_factory=list, repr=False)
    first: object = None
    last: object = None
    done: bool = False
    error: str | None = None


@dataclass
class DiscoveryStats:
    politicians: int = 0
    scanned: int = 0
    result: dict | None = None
    done: bool = False
    error: str | None = None


class Sources:
    def __init__(self, app, engine, redis_client, plan, *, speed: float, users: int, events_per_second: float,
                 stop: threading.Event, on_error=None, redis_url: str):
        from shadowwatch import ShadowWatchSync

        from .consumer import Consumer
        from .traders import Trader
        from .users import Users

        self.app, self.engine, self.redis, self.plan = app, engine, redis_client, plan
        self.speed, self.stop = speed, stop
        self.on_error = on_error or (lambda where, exc: None)
        self.patterns, self.discovery = PatternStats(), DiscoveryStats()
        self.trader = Trader(plan.bars, self._record)
        # dev mode (no licence key): said once here; the summary says if its daily limit is hit
        warnings.filterwarnings("ignore", message="ShadowWatch: no licence key")
        self.sw = ShadowWatchSync()
        self.users = Users(self.sw, plan.symbols or ["AAPL", "MSFT"], users=users, rate=events_per_second)
        self.consumer = Consumer(engine.url.render_as_string(hide_password=False), redis_url)
        self.threads: list[threading.Thread] = []
        self.listening = threading.Event()

    # -- threads --------------------------------------------------------------------------------------------
    def start(self) -> None:
        from datetime import datetime, timezone

        from .traders import deploy, listen

        self.started_at = datetime.now(timezone.utc)
        self.models = deploy()
        if not self.consumer.start():
            raise RuntimeError("the demo's event consumer did not subscribe within 30 s")
        for name, target in (("demo-listener", lambda: listen(self.redis, self.trader, self.stop, self.listening,
                                                               self._received)),
                             ("demo-discovery", self._discovery),
                             ("demo-ingest", lambda: self.users.run(self.stop))):
            self._spawn(name, target)
        self.listening.wait(10)
        self._spawn("demo-replay", self._replay)

    def _spawn(self, name: str, target) -> None:
        def run() -> None:
            try:
                target()
            except Exception as exc:  # noqa: BLE001 - reported in the summary, the other sources go on
                self.on_error(name, exc)
                if name == "demo-replay":
                    self.patterns.error = str(exc)
                elif name == "demo-discovery":
                    self.discovery.error = str(exc)
        t = threading.Thread(target=run, name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self, timeout: float = 10.0) -> None:
        for t in self.threads:
            t.join(timeout)
        self.patterns.received = self.consumer.stop()
        self.sw.close()

    # -- patterns + shadow ----------------------------------------------------------------------------------
    def _record(self, model: str, trades: list[dict]) -> None:
        self.app.send_task("shadow.record_trades", args=[model, trades])

    def _received(self, event: dict) -> None:
        if self.trader.events % 20 == 0:  # users' interests drift toward what the pool publishes
            self.users.published(str((event.get("data") or {}).get("symbol") or "AAPL"))

    def _collect(self, day, result, sent: float) -> None:
        out = result.get(timeout=300, propagate=True)
        p = self.patterns
        p.ticks += 1
        p.bars += int(out.get("bars", 0))
        p.new += int(out.get("new", 0))
        p.published += int(out.get("published", 0))
        p.tick_ms.append((time.monotonic() - sent) * 1000.0)
        p.last = day
        if p.ticks % 5 == 0:
            self._retire()
        self.trader.advance(day)

    def _retire(self) -> None:
        """A challenger the sequential test rejected is archived: its strategy stops opening trades."""
        names = [s.name for s in self.trader.strategies]
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT name FROM shadow_models WHERE role = 'archived' AND name = ANY(:n)"),
                                {"n": names}).scalars()
            self.trader.retired = set(rows)

    def _replay(self) -> None:
        inflight: deque = deque()
        started = time.monotonic()
        for n, day in enumerate(self.plan.days):
            if self.stop.is_set():
                break
            if self.speed > 0:
                ahead = started + n / self.speed - time.monotonic()
                if ahead > 0 and self.stop.wait(ahead):
                    break
            self.patterns.first = self.patterns.first or day
            bars = self.plan.ticks[day]
            inflight.append((day, self.app.send_task("patterns.on_bars", args=["1d", bars]), time.monotonic()))
            while len(inflight) > LAG:
                self._collect(*inflight.popleft())
        while inflight and not self.stop.is_set():
            self._collect(*inflight.popleft())
        self.patterns.done = True

    # -- discovery ------------------------------------------------------------------------------------------
    def _discovery(self) -> None:
        from shared_models.db import session_factory
        from workers.discovery import runs, tasks

        d = self.discovery
        started = tasks.start_scan()  # a recorded run, as `quantpipe scan all`: reconcile re-sends a lost part
        d.politicians = started["politicians"]
        if not d.politicians:
            d.error = "no politicians loaded"
            return
        factory = session_factory()
        while True:
            with factory() as s:
                p = runs.progress(s, started["run_id"])
            d.scanned = p["done"]
            if p["finished"]:
                break
            if self.stop.wait(1.0):
                return
        d.result = p["summary"]
        d.done = True
