"""The shadow pool's public API: what the tasks, the CLI and the HTTP API call.

Each function is one unit of work (it opens and commits its own transaction),
takes names and plain values, and returns plain JSON-ready values (dicts with
the seed's field names: ``model_name``, ``promotion_status``,
``promotion_score``, ``trade_count``, ``metrics{win_rate, sharpe_ratio, …}``).
Alerts are sent after the commit. User errors raise ``ShadowError`` whose
message starts with the field at fault.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .recording import RecordResult
from .registry import ShadowError

__all__ = ["ShadowError", "RecordResult", "jsonable", "record_trades"]


def jsonable(obj: Any) -> Any:
    """numpy scalars, datetimes and non-finite floats → JSON-safe values (PostgreSQL jsonb rejects NaN)."""
    from datetime import datetime

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def _settings(settings):
    from shared_models.settings import get_settings

    return settings if settings is not None else get_settings()


def record_trades(model: Any, trades: Any, *, source: str = "api", settings=None) -> RecordResult:
    """Store a batch of closed trades of ``model`` (one transaction); bad rows are dead-lettered.

    ``result.evaluate`` says whether a challenger crossed a planned look (the caller enqueues
    ``shadow.evaluate``; the task does, the CLI does unless told not to).
    """
    from shared_models.db import unit_of_work

    from . import recording

    sh = _settings(settings).shadow
    with unit_of_work() as session:
        return recording.record_trades(session, model, trades, source=source, min_trades=sh.min_trades,
                                       interval=sh.check_interval, horizon=sh.max_trades)
