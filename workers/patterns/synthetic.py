"""Seeded synthetic bars for tests and demos (never mixed with the real data in ``market_bars``
unless loaded on purpose under a synthetic symbol).

Geometric random walk with log-normal volume; ``plant_*`` helpers put a known
pattern at a known bar so tests can assert exact detections.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def generate(n: int = 300, seed: int = 0, start: str = "2024-01-02", freq: str = "B", price: float = 100.0,
             vol: float = 0.015, volume: float = 1e6) -> pd.DataFrame:
    """``n`` bars (ts, open, high, low, close, volume), reproducible for a given seed."""
    rng = np.random.default_rng(seed)
    ret = rng.normal(0.0003, vol, n)
    close = price * np.exp(np.cumsum(ret))
    open_ = np.concatenate([[price], close[:-1]]) * np.exp(rng.normal(0, vol / 4, n))
    spread = np.abs(rng.normal(0, vol / 2, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    vol_series = volume * np.exp(rng.normal(0, 0.25, n))
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return pd.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                         "volume": np.round(vol_series)})


def plant_volume_spike(frame: pd.DataFrame, i: int, ratio: float = 5.0) -> pd.DataFrame:
    """Bar ``i`` trades ``ratio`` times the mean volume of the 20 bars before it."""
    out = frame.copy()
    out.loc[out.index[i], "volume"] = float(out["volume"].iloc[i - 20:i].mean() * ratio)
    return out


def plant_gap_up(frame: pd.DataFrame, i: int, pct: float = 2.0) -> pd.DataFrame:
    """Bar ``i`` opens ``pct`` % above bar i-1's high (and the bar is shifted up consistently)."""
    out = frame.copy()
    target_open = out["high"].iloc[i - 1] * (1 + pct / 100)
    shift = target_open - out["open"].iloc[i]
    for c in ("open", "high", "low", "close"):
        out.loc[out.index[i], c] = out[c].iloc[i] + shift
    return out
