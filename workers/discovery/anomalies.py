"""Per-person anomalies: late disclosure (STOCK Act) and trade sizes unusual for that person."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .findings import Finding, asset, held_by, unit

LATE_SCALE_DAYS = 120.0  # severity 1 - e^(-excess/120): 60 d late -> 0.12, 6 months late -> 0.72


def late_severity(lag_days: float, deadline_days: int) -> float:
    return unit(-np.expm1(-(lag_days - deadline_days) / LATE_SCALE_DAYS)) if lag_days > deadline_days else 0.0


def late_disclosures(trades: pd.DataFrame, *, deadline_days: int = 45) -> list[Finding]:
    """One finding per filing disclosed after the deadline (the STOCK Act allows 45 days)."""
    # the rows past the deadline as positions into plain arrays (no filtered frames): the same rows, in
    # the same order, as ``dropna(subset=[lag])`` then ``lag > deadline``
    lag_col = trades["disclosure_lag_days"]
    late = lag_col.notna().to_numpy()
    late[late] = lag_col.to_numpy()[late] > deadline_days
    pos = np.flatnonzero(late)
    out: list[Finding] = []
    if not len(pos):
        return out
    # the filing: its link, else "disclosed:<date>" (a missing date too: no filing, the row is dropped,
    # as groupby drops a missing key)
    filing = trades["ptr_link"].to_numpy(object)[pos]
    dates_all = trades["disclosure_date"].to_numpy()[pos]
    no_link = pd.isna(filing)
    if no_link.any():
        day = dates_all[no_link].astype("datetime64[D]")
        filing[no_link] = np.where(np.isnat(day), None,
                                   np.char.add("disclosed:", np.datetime_as_string(day, unit="D")).astype(object))
    keep = ~pd.isna(filing)
    keys = filing[keep]
    # groupby(filing, sort=True) without a frame per filing: rows ordered by filing (stable, so each
    # filing keeps its rows' order), then one slice of plain arrays per filing
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    lags = lag_col.to_numpy()[pos][keep][order]
    dates = dates_all[keep][order]
    tickers = trades["ticker"].to_numpy()[pos][keep][order]
    ids = trades["id"].to_numpy()[pos][keep][order]
    cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(keys)]):
        lag = int(max(lags[a:b]))
        day = dates[a:b]
        disclosed = pd.Timestamp(day.max()) if not np.isnat(day).any() else pd.Series(day).max()
        out.append(Finding(
            kind="late_disclosure", subject=str(keys[a])[-200:], score=late_severity(lag, deadline_days),
            confidence=1.0,
            description=(f"{b - a} trade(s) disclosed {lag} days after the transaction on "
                         f"{disclosed:%Y-%m-%d}, {lag - deadline_days} days past the {deadline_days}-day "
                         "STOCK Act deadline."),
            parameters={"deadline_days": deadline_days, "severity_scale_days": LATE_SCALE_DAYS},
            evidence={"max_lag_days": lag, "disclosure_date": disclosed, "n_trades": int(b - a),
                      "tickers": sorted({t for t in tickers[a:b] if not pd.isna(t)})[:50],
                      "trade_ids": ids[a:b].tolist()},
        ))
    return out


_TRADE = {"sale_full": "full sale", "sale_partial": "partial sale"}  # as a sentence says them (purchase, exchange)


def unusual_sizes(trades: pd.DataFrame, *, min_trades: int = 10, z_threshold: float = 3.0,
                  min_orders: float = 1.5) -> list[Finding]:
    """Trades whose size (log10 of the bracket's lower bound) is far above the person's usual size.

    Brackets are log-spaced, so distance is measured in orders of magnitude above the
    person's median; the scale is the MAD, or the standard deviation when most trades
    share one bracket (MAD = 0). A trade must be both >= ``z_threshold`` robust SDs and
    >= ``min_orders`` orders of magnitude (~30x: two brackets) above the median: for someone who nearly
    always trades in the lowest bracket, the next bracket up is not news.
    Severity: 1 order of magnitude -> 0.33, 3 or more -> 1.
    """
    amount = trades["amount_min"].to_numpy(float)
    rows = np.flatnonzero(amount > 0)  # dropna, then > 0 (NaN > 0 is False): the same rows, in order
    n = len(rows)
    if n < min_trades:
        return []
    x = np.log10(amount[rows])
    median = float(np.median(x))
    scale = 1.4826 * float(np.median(np.abs(x - median))) or float(x.std())
    if scale == 0:
        return []
    z = (x - median) / scale
    out: list[Finding] = []
    flagged = np.flatnonzero((z >= z_threshold) & (x - median >= min_orders))
    # the flagged rows' fields from plain columns (not a mixed-dtype row Series per finding)
    cols = {c: trades[c].to_numpy() for c in ("row_hash", "type", "ticker", "amount_raw", "amount_min", "amount_max",
                                              "id", "owner", "asset_type", "asset_description")} if len(flagged) else {}
    dates = trades["transaction_date"]
    for i in flagged:
        row = {c: v[rows[i]] for c, v in cols.items()}
        row["transaction_date"] = dates.iloc[rows[i]]
        rarer = float((x >= x[i]).mean())
        what = (f"{_TRADE.get(row['type'], row['type'])} of "
                f"{asset(row['ticker'], row['asset_type'], row['asset_description'])}{held_by(row['owner'])}")
        out.append(Finding(
            kind="unusual_size", subject=str(row["row_hash"]), score=unit((x[i] - median) / 3.0),
            confidence=unit(1 - rarer),
            description=(f"{what} for "
                         f"{row['amount_raw'] or format(row['amount_min'], ',.0f')} on "
                         f"{row['transaction_date']:%Y-%m-%d} is {10 ** (x[i] - median):.0f}x this member's "
                         f"median trade size ({z[i]:.1f} robust SDs; {rarer:.1%} of their trades are this large)."),
            parameters={"min_trades": min_trades, "z_threshold": z_threshold, "min_orders": min_orders},
            evidence={"trade_id": int(row["id"]), "owner": row["owner"], "amount_min": float(row["amount_min"]),
                      "amount_max": None if pd.isna(row["amount_max"]) else float(row["amount_max"]),
                      "median_amount": 10 ** median, "robust_z": float(z[i]), "n_trades": n},
        ))
    return out
