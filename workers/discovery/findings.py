"""What every analysis returns: a finding with a natural key, scores in 0..1, and its evidence.

Analyses are pure (frames and arrays in, ``Finding`` out); ``store.py`` upserts them.
Numbers are rounded before they are stored so a re-run writes byte-identical JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

PURCHASE, SALE = 1, -1
DIRECTION = {"purchase": PURCHASE, "sale_full": SALE, "sale_partial": SALE}


@dataclass(frozen=True)
class Finding:
    """One discovery. ``score`` is strength (patterns, networks) or severity (anomalies)."""

    kind: str
    subject: str
    score: float
    confidence: float
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    members: tuple[str, ...] = ()  # network findings: politician ids, sorted

    def __post_init__(self) -> None:
        for name in ("score", "confidence"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0) or math.isnan(v):
                raise ValueError(f"{self.kind}: {name} {v!r} outside 0..1")


def unit(x: float) -> float:
    """Clip to 0..1 and round, for scores."""
    return round(float(min(1.0, max(0.0, x))), 6)


def clean_json(value: Any) -> Any:
    """Plain, rounded JSON values (numpy scalars, dates, NaN -> None)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # most leaves: returned as they are
        return value
    if kind is float:
        return None if math.isnan(value) or math.isinf(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Index)):
        return [clean_json(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else float(f"{f:.6g}")
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(pd.Timestamp(value).date())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


TRADE_FRAME_COLUMNS = ["id", "row_hash", "ticker", "asset_type", "transaction_date", "disclosure_date",
                       "disclosure_lag_days", "type", "owner", "amount_min", "amount_max", "amount_raw", "ptr_link"]


def trade_frame(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Normalise trades to the columns analyses expect (dates as datetime64)."""
    df = pd.DataFrame(rows, columns=TRADE_FRAME_COLUMNS) if not isinstance(rows, pd.DataFrame) else rows.copy()
    for col in ("transaction_date", "disclosure_date"):
        df[col] = pd.to_datetime(df[col])
    return df.sort_values(["transaction_date", "id"]).reset_index(drop=True)
