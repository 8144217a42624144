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
from sqlalchemy import Engine, text


def stored_bars(engine: Engine, symbols: list[str], timeframe: str, start=None, end=None) -> pd.DataFrame:
    sql = ("SELECT symbol, ts, open, high, low, close, volume FROM market_bars WHERE timeframe = :tf "
           "AND symbol = ANY(:s) AND (CAST(:start AS timestamptz) IS NULL OR ts >= CAST(:start AS timestamptz)) "
           "AND (CAST(:end AS timestamptz) IS NULL OR ts <= CAST(:end AS timestamptz)) ORDER BY ts, symbol")
    with engine.connect() as conn:
        return pd.read_sql(text(sql), conn, params={"tf": timeframe, "s": symbols, "start": start, "end": end})


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
