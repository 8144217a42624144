"""Shared helpers of the patterns tests: load a few real tickers, subscribe, check the event contract."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TIERS = {"daily", "intraday", "combo"}
TOP_KEYS = {"event_type", "source", "timestamp", "flow_id", "data"}
DATA_KEYS = {"symbol", "pattern", "confidence", "flow_id", "tier", "source", "timestamp", "timeframe",
             "expires_at", "current_price", "price_change", "volume", "indicators",
             "user_count"}  # the audience's size (issue 17: personal pattern alerts)


def load_daily(engine, *symbols: str) -> None:
    from loaders.prices import load_prices

    load_prices(engine, [ROOT / "data/prices/daily" / f"{s}.csv.gz" for s in symbols])


def store_frame(engine, symbol: str, frame) -> None:
    """Store adjusted daily bars through the loader's own write path (COPY + upsert), as
    `quantpipe data load-prices` does."""
    import pandas as pd

    from loaders.prices import PriceFrame, write_price_frame

    raw = engine.raw_connection()
    try:
        write_price_frame(raw, PriceFrame(Path(f"{symbol}.csv"), symbol, "1d", frame.assign(adjusted=True),
                                          pd.DataFrame(columns=["reason", "field"])))
        raw.commit()
    finally:
        raw.close()


def collect(pubsub, n: int | None, timeout: float) -> list[dict]:
    """Messages until ``n`` arrived (or, with n=None, until ``timeout`` passes)."""
    out, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and (n is None or len(out) < n):
        m = pubsub.get_message(timeout=0.2)
        if m and m["type"] == "message":
            out.append(json.loads(m["data"]))
    return out


def check_event(ev: dict) -> None:
    """Every field of DESIGN §4, by name and type."""
    assert set(ev) == TOP_KEYS, set(ev) ^ TOP_KEYS
    assert ev["event_type"] == "pattern_detected" and ev["source"] == "TickStockPL"
    assert type(ev["timestamp"]) is float
    assert str(uuid.UUID(ev["flow_id"], version=4)) == ev["flow_id"]
    d = ev["data"]
    assert set(d) == DATA_KEYS, set(d) ^ DATA_KEYS
    assert "pattern_name" not in d
    assert type(d["symbol"]) is str and type(d["pattern"]) is str and d["pattern"]
    assert type(d["confidence"]) is float and 0 <= d["confidence"] <= 1 and round(d["confidence"], 2) == d["confidence"]
    assert d["flow_id"] == ev["flow_id"]
    assert d["tier"] in TIERS and d["source"] == d["tier"]
    assert type(d["timestamp"]) is float and type(d["expires_at"]) is float and d["expires_at"] > d["timestamp"]
    assert d["timestamp"] <= ev["timestamp"]
    assert d["timestamp"] == d["indicators"]["bar_time"]  # the bar that completed the pattern
    assert d["timeframe"] == ("1min" if d["tier"] == "intraday" else "1d")
    assert type(d["current_price"]) is float and d["current_price"] > 0
    assert type(d["price_change"]) is float
    assert type(d["volume"]) is int and d["volume"] >= 0
    assert type(d["user_count"]) is int and d["user_count"] >= 0
    assert isinstance(d["indicators"], dict)
    assert all(isinstance(v, (int, float, str)) for v in d["indicators"].values())
