"""Shadow: a champion and two challengers that trade the patterns pool's own detections.

The trader is a consumer of ``tickstock.events.patterns`` (the DESIGN §4 events the pool
publishes), like the main app. Each strategy enters long at the close of the bar that
completed a bullish pattern (``indicators.direction > 0``), once per (symbol, day) — that
pair is the trade's ``opportunity_id``, so the evaluation compares the models pair by pair —
and exits after N bars or at its stop, on the real bars of the replay. A trade is sent to
``shadow.record_trades`` when the replay has played its exit bar ("as it closes"); the task
enqueues ``shadow.evaluate`` at each planned look, which promotes or rejects.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

CHANNEL = "tickstock.events.patterns"


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    hold: int                  # exit at the close of the hold-th bar after entry
    stop: float | None = None  # exit at entry * (1 - stop) when a bar's low reaches it
    min_confidence: float = 0.0
    champion: bool = False

    def exit(self, entry: float, close: np.ndarray, low: np.ndarray, i: int) -> tuple[int, float] | None:
        """(bar index, price) of the exit of a position opened at bar i, or None past the data."""
        for j in range(i + 1, min(i + self.hold, len(close) - 1) + 1):
            if self.stop is not None and low[j] <= entry * (1 - self.stop):
                return j, entry * (1 - self.stop)
            if j == i + self.hold:
                return j, float(close[j])
        return None


STRATEGIES = (
    Strategy("pattern_hold5_v1", "long every bullish pattern, exit after 5 bars", 5, champion=True),
    Strategy("pattern_stop_v2", "long every bullish pattern, exit after 5 bars or a 3 % stop", 5, stop=0.03),
    Strategy("momentum_v2", "long bullish patterns of confidence >= 0.7, exit after 10 bars or a 5 % stop",
             10, stop=0.05, min_confidence=0.7),
)


def deploy(strategies=STRATEGIES) -> list[dict]:
    """Register the models through the shadow pool's public registry (idempotent by name)."""
    from workers.shadow import service

    has_champion = service.status().get("champion") is not None
    out = []
    for s in strategies:
        out.append(service.deploy(s.name, "rules", s.description, {"hold": s.hold, "stop": s.stop,
                                                                   "min_confidence": s.min_confidence},
                                  champion=s.champion and not has_champion))
    return out


class Trader:
    """Opens positions on detection events, sends trades when the replay reaches their exit bar."""

    def __init__(self, bars: dict[str, pd.DataFrame], send, strategies=STRATEGIES, batch: int = 200):
        self.strategies, self.send, self.batch = strategies, send, batch
        # per symbol: bar times as epoch seconds (what events carry), closes, lows - plain arrays, so an
        # event costs a binary search, not pandas (the listener must keep up with ~1,300 events a tick)
        self.series = {s: ((f["ts"].astype("int64") // 10**9).to_numpy(), f["close"].to_numpy(float),
                           f["low"].to_numpy(float)) for s, f in bars.items()}
        self.pending: list[tuple[pd.Timestamp, str, dict]] = []   # (exit day, model, trade)
        self.seen: set[tuple[str, int]] = set()
        self.lock = threading.Lock()
        self.events = self.entries = self.sent = 0
        self.clock: pd.Timestamp | None = None
        self.retired: set[str] = set()  # rejected (archived) models stop trading

    def on_event(self, event: dict) -> None:
        self.events += 1
        d = event.get("data", {})
        sym, ts = d.get("symbol"), d.get("timestamp")
        direction = (d.get("indicators") or {}).get("direction", 0)
        if sym not in self.series or ts is None or direction <= 0 or (sym, int(ts)) in self.seen:
            return
        self.seen.add((sym, int(ts)))
        times, close, low = self.series[sym]
        i = int(np.searchsorted(times, int(ts)))
        if i >= len(times) or times[i] != int(ts):
            return
        day = datetime.fromtimestamp(int(ts), timezone.utc)
        opp = f"{sym}:{day:%Y%m%d}"
        with self.lock:
            self.entries += 1
            for s in self.strategies:
                if s.name in self.retired or float(d.get("confidence", 0)) < s.min_confidence:
                    continue
                out = s.exit(float(close[i]), close, low, i)
                if out is None:
                    continue
                j, price = out
                closed = pd.Timestamp(int(times[j]), unit="s", tz="UTC")
                self.pending.append((closed, s.name, {
                    "trade_id": f"{s.name}:{opp}", "opportunity_id": opp, "opened_at": day.isoformat(),
                    "closed_at": closed.isoformat(), "return": price / float(close[i]) - 1.0}))

    def advance(self, day: pd.Timestamp | None) -> int:
        """Send every trade whose exit bar has been played (all of them with ``day=None``)."""
        with self.lock:
            if day is not None:
                self.clock = day
            due = [p for p in self.pending if day is None or p[0] <= day]
            self.pending = [p for p in self.pending if not (day is None or p[0] <= day)]
        by_model: dict[str, list[dict]] = {}
        for _, model, trade in sorted(due, key=lambda p: (p[0], p[2]["trade_id"])):
            by_model.setdefault(model, []).append(trade)
        for model, trades in by_model.items():
            for k in range(0, len(trades), self.batch):
                self.send(model, trades[k:k + self.batch])
                self.sent += len(trades[k:k + self.batch])
        return len(due)


def listen(redis_client, trader: Trader, stop: threading.Event, ready: threading.Event,
           received=None) -> None:
    """Feed every published event to ``trader`` until ``stop`` (then ``received(event)``)."""
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    ready.set()
    try:
        while not stop.is_set():
            msg = pubsub.get_message(timeout=0.2)
            if msg and msg.get("type") == "message":
                try:
                    event = json.loads(msg["data"])
                except ValueError:
                    continue
                if received is not None:  # first: the EVENT_RECEIVED checkpoint is the consumer's latency
                    received(event)
                trader.on_event(event)
    finally:
        pubsub.close()
