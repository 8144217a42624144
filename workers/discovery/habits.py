"""Habits of one person: ticker concentration and weekday timing.

Concentration is judged against what Congress as a whole trades: a binomial test
of the person's count in their top ticker against that ticker's share of all
disclosed trades, so loving AAPL is not remarkable but half of one's trades in a
small-cap is. (The data carry no sector field, so concentration is by ticker.)
Timing is a chi-square test of distinct trading days across Monday–Friday.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from . import pvalues
from .findings import Finding, unit

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def ticker_concentration(trades: pd.DataFrame, market_share: Mapping[str, float], *, min_trades: int = 10,
                         min_share: float = 0.2, alpha: float = 0.01) -> Finding | None:
    column = trades["ticker"].to_numpy()
    known = ~pd.isna(column)
    n = int(known.sum())
    if n < min_trades:
        return None
    counts = pd.Series(column[known]).value_counts()  # dropna()'s values, in order: the same counts and ties
    top, k = str(counts.index[0]), int(counts.iloc[0])
    share = k / n
    baseline = float(market_share.get(top, 0.0)) or 1.0 / max(1, len(market_share))
    p = pvalues.binom_sf(k - 1, n, min(baseline, 1.0))
    if share < min_share or p >= alpha:
        return None
    shares = counts / n
    hhi = float((shares ** 2).sum())
    ids = trades["id"].to_numpy()[known][column[known] == top].tolist()
    return Finding(
        kind="ticker_concentration", subject=top, score=unit(share), confidence=unit(1 - p),
        description=(f"{share:.0%} of {n} stock trades are in {top}, against {baseline:.2%} of all "
                     f"congressional trades (binomial p={p:.2g}); Herfindahl index {hhi:.2f}."),
        parameters={"min_trades": min_trades, "min_share": min_share, "alpha": alpha},
        evidence={"ticker": top, "count": k, "n_trades": n, "share": share, "congress_share": baseline,
                  "p_value": p, "hhi": hhi, "top_tickers": {str(t): int(c) for t, c in counts.head(5).items()},
                  "trade_ids": ids[:200]},
    )


def weekday_habit(trades: pd.DataFrame, *, min_days: int = 20, alpha: float = 0.01) -> Finding | None:
    col = trades["transaction_date"]
    if not np.issubdtype(col.dtype, np.datetime64):
        col = pd.to_datetime(col)
    if getattr(col.dt, "tz", None) is not None:
        col = col.dt.tz_localize(None)  # weekdays of the local wall time, as ``.dt.weekday`` gives
    # distinct timestamps (NaT dropped), their weekdays on int64 nanoseconds: 1970-01-01 was a Thursday (3)
    ns = col.to_numpy("datetime64[ns]")
    ns = np.unique(ns[~np.isnat(ns)]).view(np.int64)
    weekday = (ns // 86_400_000_000_000 + 3) % 7
    weekday = weekday[weekday < 5]
    n = len(weekday)
    if n < min_days:
        return None
    counts = np.bincount(weekday, minlength=5)
    chi2, p = pvalues.chisquare(counts)
    if p >= alpha:
        return None
    top = int(np.argmax(counts))
    cramer_v = float(np.sqrt(chi2 / (n * 4)))
    return Finding(
        kind="habitual_timing", subject=f"weekday:{WEEKDAYS[top]}", score=unit(cramer_v), confidence=unit(1 - p),
        description=(f"{counts[top] / n:.0%} of {n} trading days fall on a {WEEKDAYS[top]} "
                     f"(chi-square p={p:.2g} against an even spread over the week)."),
        parameters={"min_days": min_days, "alpha": alpha},
        evidence={"counts": dict(zip(WEEKDAYS, counts.tolist())), "chi2": float(chi2), "p_value": float(p),
                  "cramers_v": cramer_v},
    )
