"""Replay feed: plays stored bars in time order as if they arrived live.

Each bar goes through the live path (``scanning.ingest_bar`` in-process, or the
``patterns.on_bar`` task when ``send`` is given), spaced by the real gap between
bar times divided by ``speed`` (``speed=0``: as fast as possible). Because the
live path upserts the bar and detections are keyed by (symbol, pattern, tier,
bar time), replaying a period twice publishes nothing twice.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

import pandas as pd
from sqlalchemy import Engine, select

from shared_models.models import MarketBar


def stored_bars(engine: Engine, symbols: list[str], timeframe: str, start=None, end=None) -> pd.DataFrame:
    b = MarketBar
    q = select(b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume).where(
        b.timeframe == timeframe, b.symbol.in_(symbols))
    if start is not None:
        q = q.where(b.ts >= start)
    if end is not None:
        q = q.where(b.ts <= end)
    with engine.connect() as conn:
        return pd.read_sql(q.order_by(b.ts, b.symbol), conn)


def feed(frame: pd.DataFrame, speed: float = 0.0, sleep: Callable[[float], None] = time.sleep
         ) -> Iterator[tuple[str, dict]]:
    """Yield (symbol, bar) in time order, sleeping (gap / speed) between distinct bar times."""
    prev = None
    for row in frame.itertuples(index=False):
        ts = pd.Timestamp(row.ts)
        if speed > 0 and prev is not None and ts > prev:
            sleep((ts - prev).total_seconds() / speed)
        prev = ts
        yield row.symbol, {"ts": ts.timestamp(), "open": row.open, "high": row.high, "low": row.low,
                           "close": row.close, "volume": row.volume}
