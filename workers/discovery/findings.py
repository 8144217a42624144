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


_HELD_BY = {"spouse": " by the spouse", "joint": " jointly", "dependent": " by a dependent"}


def held_by(owner: Any) -> str:
    """`` by the spouse``, `` jointly``, `` by a dependent``, or nothing (self or unknown): a member's
    and a spouse's trade of the same stock, day and size are two findings, and should read as two."""
    return _HELD_BY.get(owner, "")


def asset(ticker: Any, asset_type: Any, description: Any = None, width: int = 80) -> str:
    """What a trade was of: ``MSFT``; ``MSFT options (Microsoft Corporation - CALL @ $150 expiry
    6/16/23)``; with no ticker the filing's words (a bond, a fund) or "a non-stock asset"."""
    said = description if isinstance(description, str) and description else None
    if said is not None and len(said) > width:
        said = said[:width - 1] + "…"
    if not isinstance(ticker, str) or not ticker:
        return said or "a non-stock asset"
    if asset_type == "Stock Option":
        return f"{ticker} options ({said})" if said else f"{ticker} options"
    return ticker


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


TRADE_FRAME_COLUMNS = ["id", "row_hash", "ticker", "asset_type", "asset_description", "transaction_date",
                       "disclosure_date", "disclosure_lag_days", "type", "owner", "amount_min", "amount_max",
                       "amount_raw", "ptr_link"]


def trade_frame(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Normalise trades to the columns analyses expect (dates as datetime64)."""
    df = pd.DataFrame(rows, columns=TRADE_FRAME_COLUMNS) if not isinstance(rows, pd.DataFrame) else rows.copy()
    for col in ("transaction_date", "disclosure_date"):
        df[col] = pd.to_datetime(df[col])
    return df.sort_values(["transaction_date", "id"]).reset_index(drop=True)
