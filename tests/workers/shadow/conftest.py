"""Shadow-pool fixtures: an empty registry per test, and trade factories."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import text

from tests.support import wipe_shadow

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)


@pytest.fixture()
def registry_db(engine):
    """Empty shadow tables (and shadow dead letters) before and after the test."""
    def wipe():
        with engine.begin() as c:
            wipe_shadow(c)
            c.execute(text("DELETE FROM dead_letters WHERE pool = 'shadow'"))
    wipe()
    yield engine
    wipe()


def make_trades(returns, start: datetime = T0, prefix: str = "t", minutes: int = 7, shadow: bool | None = None):
    """Trade rows (JSON-ready) with increasing open/close times."""
    rows = []
    for i, r in enumerate(np.asarray(returns, dtype=float)):
        opened = start + timedelta(minutes=minutes * i)
        row = {"trade_id": f"{prefix}{i:06d}", "opened_at": opened.isoformat(),
               "closed_at": (opened + timedelta(minutes=5)).isoformat(), "return": float(r), "pnl": float(r) * 1e4}
        if shadow is not None:
            row["shadow"] = shadow
        rows.append(row)
    return rows


def returns(rng, n, mean=0.0005, vol=0.02):
    return mean + vol * rng.standard_t(4, n) / np.sqrt(2.0)
