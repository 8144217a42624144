"""Event study: abnormal returns after a trade, against the S&P 500 (market model).

Day 0 is the first trading day on or after the transaction. The market model
``R_i = a + b R_m + e`` is fitted by OLS on trading days [-250, -30]; abnormal
returns ``AR_t = R_i,t - (a + b R_m,t)`` are summed over days 1..h for h = 5, 20,
60 (CAR), with ``t = CAR_h / (s_e sqrt(h))`` (MacKinlay 1997). A purchase followed
by a significantly positive CAR, or a sale followed by a negative one, is an
anomaly: the trade looks informed in hindsight.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from . import pvalues
from .findings import DIRECTION, Finding, held_by, unit

HORIZONS = (5, 20, 60)
ESTIMATION = (-250, -30)
MIN_ESTIMATION_DAYS = 120
PRIMARY = 20
WINDOW_BEFORE = 10  # trading days before day 0 kept in a finding's picture


@dataclass(frozen=True)
class EventResult:
    event_day: pd.Timestamp
    alpha: float
    beta: float
    sigma: float
    n_estimation: int
    car: dict[int, float]
    t_stat: dict[int, float]
    # the picture: trading days from day 0 and the stock's, the market's and the abnormal cumulative returns
    # (sums of daily returns, 0 at day 0), so the stored CARs can be seen against the S&P 500
    window: dict[str, list] = field(default_factory=dict)


def as_arrays(prices) -> tuple[np.ndarray, np.ndarray]:
    """(epoch days, closes) from a date-indexed Series or an already split pair."""
    if isinstance(prices, tuple):
        return prices
    idx = pd.DatetimeIndex(prices.index)
    return idx.values.astype("datetime64[D]").astype(np.int64), prices.to_numpy(dtype=float)


def _increasing(x: np.ndarray) -> bool:
    return bool(len(x) < 2 or (x[1:] > x[:-1]).all())


def _common_days(sd: np.ndarray, md: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(days, si, mi) of the days in both strictly increasing calendars, by binary search: the same as
    intersect1d's concatenate + mergesort of the whole market calendar."""
    at = np.searchsorted(md, sd)
    common = at < len(md)
    common[common] = md[at[common]] == sd[common]
    si = np.flatnonzero(common)
    return sd[si], si, at[si]


def _returns(days: np.ndarray, s: np.ndarray, m: np.ndarray, seg: np.ndarray | None = None) -> tuple:
    """Day i's return close_i / close_{i-1} - 1 of aligned closes, finite ones only; with ``seg`` (the
    stock of each day) none across two stocks. (days, r, m, seg of the days kept or None)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r, rm = s[1:] / s[:-1] - 1, m[1:] / m[:-1] - 1
    ok = np.isfinite(r) & np.isfinite(rm)
    if seg is not None:
        ok &= seg[1:] == seg[:-1]
        seg = seg[1:][ok]
    return days[1:][ok], r[ok], rm[ok], seg


def aligned_returns(stock, market) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(days, stock returns, market returns) on the days both trade; day i's return is close_i / close_{i-1} - 1."""
    sd, sc = as_arrays(stock)
    md, mc = as_arrays(market)
    if _increasing(sd) and _increasing(md):
        days, si, mi = _common_days(sd, md)
    else:
        days, si, mi = np.intersect1d(sd, md, assume_unique=True, return_indices=True)
    return _returns(days, sc[si], mc[mi])[:3]


def returns_frame(stock_close: pd.Series, market_close: pd.Series) -> pd.DataFrame:
    """Aligned simple returns (columns r, m) indexed by date, for inspection and tests."""
    days, r, m = aligned_returns(stock_close, market_close)
    return pd.DataFrame({"r": r, "m": m}, index=pd.to_datetime(days.astype("datetime64[D]")))


def _fit(days: np.ndarray, r: np.ndarray, m: np.ndarray, event_day: int, horizons, estimation,
         min_estimation: int) -> tuple | None:
    """The market model and CARs of one event: (day0, alpha, beta, sigma, n, car, t), or None."""
    day0 = int(np.searchsorted(days, event_day))
    lo, hi = day0 + estimation[0], day0 + estimation[1]
    if lo < 0 or day0 + max(horizons) >= len(days) or hi - lo < min_estimation:
        return None
    er, em = r[lo:hi + 1], m[lo:hi + 1]
    # em.var(), em.mean(), er.mean() as the reductions numpy's _var/_mean do (sum, then / n), each
    # computed once: the same floats without four Python-level wrappers per event (~10k events a scan)
    n = len(em)
    mean_m = np.add.reduce(em) / n
    dev_m = em - mean_m
    var_m = np.add.reduce(dev_m * dev_m) / n
    if var_m == 0:
        return None
    mean_r = np.add.reduce(er) / n
    beta = float(np.add.reduce(dev_m * (er - mean_r)) / n / var_m)
    alpha = float(mean_r - beta * mean_m)
    resid = er - alpha - beta * em
    sigma = float(np.sqrt((resid ** 2).sum() / (len(er) - 2)))
    end = day0 + max(horizons) + 1
    ar = r[day0 + 1:end] - alpha - beta * m[day0 + 1:end]
    car = {h: float(ar[:h].sum()) for h in horizons}
    t = {h: (car[h] / (sigma * np.sqrt(h)) if sigma > 0 else 0.0) for h in horizons}
    return day0, alpha, beta, sigma, len(er), car, t


def aligned_many(stocks: list, market) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``aligned_returns`` of several stocks at once, back to back: (days, r, m, bounds) with stock k's
    result at [bounds[k], bounds[k + 1]). The same floats (element-wise ops); one set of numpy calls per
    scan instead of one per ticker, which matters at ~3 events per ticker and scan."""
    md, mc = as_arrays(market)
    pairs = [as_arrays(s) for s in stocks]
    sd = np.concatenate([d for d, _ in pairs]) if pairs else np.empty(0, np.int64)
    seg = np.repeat(np.arange(len(pairs)), [len(d) for d, _ in pairs])
    if not (_increasing(md) and ((sd[1:] > sd[:-1]) | (seg[1:] != seg[:-1])).all()):
        parts = [aligned_returns(x, market) for x in pairs]  # intersect1d's path, stock by stock
        bounds = np.r_[0, np.cumsum([len(d) for d, _, _ in parts])]
        return (*(np.concatenate([x[i] for x in parts]) if parts else np.empty(0) for i in range(3)), bounds)
    days, si, mi = _common_days(sd, md)
    s = np.concatenate([c for _, c in pairs])[si] if pairs else np.empty(0)
    days, r, m, seg = _returns(days, s, mc[mi], seg[si])
    return days, r, m, np.searchsorted(seg, np.arange(len(pairs) + 1))


def _width(estimation) -> int:
    """Days in an estimation window (``estimation`` is inclusive at both ends)."""
    return estimation[1] - estimation[0] + 1


def _fits(r: np.ndarray, m: np.ndarray, day0: np.ndarray, start: np.ndarray, end: np.ndarray, horizons,
          estimation, min_estimation: int) -> tuple:
    """``_fit`` of many events at once, value for value. ``day0``: each event's day 0 as an index into
    r/m, which hold its stock's returns at [start, end). The estimation windows have one width, so they
    are rows of a C-contiguous 2-D gather, and ``np.add.reduce`` along the last axis sums each row as it
    sums a 1-D slice (the same pairwise summation; tests compare the floats with ``==``).
    Returns (positions of the fitted events, day0, alpha, beta, sigma, car, t), car and t of shape
    (fitted events, horizons); the events ``_fit`` rejects are left out."""
    width = _width(estimation)
    ok = (day0 + estimation[0] >= start) & (day0 + max(horizons) < end) & (width - 1 >= min_estimation)
    d0 = day0[ok]
    em = m[(d0 + estimation[0])[:, None] + np.arange(width)]
    mean_m = np.add.reduce(em, axis=1) / width
    dev_m = em - mean_m[:, None]
    var_m = np.add.reduce(dev_m * dev_m, axis=1) / width
    live = var_m != 0
    ok[ok] = live
    d0, em, mean_m, dev_m, var_m = d0[live], em[live], mean_m[live], dev_m[live], var_m[live]
    er = r[(d0 + estimation[0])[:, None] + np.arange(width)]
    mean_r = np.add.reduce(er, axis=1) / width
    beta = np.add.reduce(dev_m * (er - mean_r[:, None]), axis=1) / width / var_m
    alpha = mean_r - beta * mean_m
    resid = er - alpha[:, None] - beta[:, None] * em
    sigma = np.sqrt(np.add.reduce(resid ** 2, axis=1) / (width - 2))
    after = (d0 + 1)[:, None] + np.arange(max(horizons))
    ar = r[after] - alpha[:, None] - beta[:, None] * m[after]
    car = np.stack([np.add.reduce(ar[:, :h], axis=1) for h in horizons], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sigma[:, None] > 0, car / (sigma[:, None] * np.sqrt(np.asarray(horizons))), 0.0)
    return np.flatnonzero(ok), d0, alpha, beta, sigma, car, t


def _fit_of(fits: tuple, j: int, start: int, horizons, estimation) -> tuple:
    """Fitted event ``j`` of ``_fits`` as the tuple ``_fit`` returns for its stock's arrays (from
    ``start``), with the same types: Python floats, t numpy floats (or 0.0 when sigma is 0)."""
    _, d0, alpha, beta, sigma, car, t = fits
    s = float(sigma[j])
    return (int(d0[j]) - start, float(alpha[j]), float(beta[j]), s, _width(estimation),
            {h: float(car[j, k]) for k, h in enumerate(horizons)},
            {h: (t[j, k] if s > 0 else 0.0) for k, h in enumerate(horizons)})


def _result(days: np.ndarray, r: np.ndarray, m: np.ndarray, fit: tuple, horizons) -> EventResult:
    """The full result of a fitted event, with its picture (built only for events that are kept)."""
    day0, alpha, beta, sigma, n, car, t = fit
    end = day0 + max(horizons) + 1
    when = pd.Timestamp(np.datetime64(int(days[day0]), "D"))
    w0 = max(1, day0 - WINDOW_BEFORE)
    seg = slice(w0, end)

    def anchored(x: np.ndarray) -> list[float]:
        c = np.cumsum(x)
        return np.round(c - c[day0 - w0], 6).tolist()

    window = {"day": (np.arange(w0, end) - day0).tolist(), "stock": anchored(r[seg]), "market": anchored(m[seg]),
              "abnormal": anchored(r[seg] - alpha - beta * m[seg])}
    return EventResult(when, alpha, beta, sigma, n, car, t, window)


def _car(days: np.ndarray, r: np.ndarray, m: np.ndarray, event_day: int, horizons, estimation,
         min_estimation: int) -> EventResult | None:
    fit = _fit(days, r, m, event_day, horizons, estimation, min_estimation)
    return None if fit is None else _result(days, r, m, fit, horizons)


def event_car(rets: pd.DataFrame, event_date, horizons=HORIZONS, estimation=ESTIMATION,
              min_estimation: int = MIN_ESTIMATION_DAYS) -> EventResult | None:
    """CARs of one event on an aligned returns frame, or None when the windows do not fit the data."""
    days = pd.DatetimeIndex(rets.index).values.astype("datetime64[D]").astype(np.int64)
    event_day = np.datetime64(pd.Timestamp(event_date).date(), "D").astype(np.int64)
    return _car(days, rets["r"].to_numpy(), rets["m"].to_numpy(), int(event_day), horizons, estimation,
                min_estimation)


@functools.lru_cache(maxsize=64)
def _t_critical(alpha: float, dof: int) -> float:
    """|t| above which a two-sided p is below alpha (one scipy call per dof, not per event)."""
    return pvalues.t_isf(alpha / 2, dof)


def _finding(res: EventResult, ticker: str, sign: int, tx, trade_id: int, row_hash: str, alpha: float,
             owner=None, amount=None) -> Finding:
    p = float(2 * pvalues.t_sf(abs(res.t_stat[PRIMARY]), res.n_estimation - 2))
    verb = "bought" if sign > 0 else "sold"
    when = pd.Timestamp(tx)
    size = f" for {amount}" if isinstance(amount, str) else ""  # two brackets of one day's buys: two findings
    return Finding(
        kind="abnormal_return", subject=row_hash, score=unit(abs(res.car[PRIMARY]) / 0.20),
        confidence=unit(1 - p),
        description=(f"{ticker} {verb}{held_by(owner)}{size} on {when:%Y-%m-%d} was followed by a "
                     f"{res.car[PRIMARY]:+.1%} abnormal return over {PRIMARY} trading days against the "
                     f"S&P 500 (t={res.t_stat[PRIMARY]:.2f}; 5 d {res.car[5]:+.1%}, 60 d {res.car[60]:+.1%})."),
        parameters={"estimation_window": list(ESTIMATION), "horizons": list(HORIZONS), "alpha": alpha,
                    "model": "market model OLS vs GSPC"},
        evidence={"trade_id": trade_id, "ticker": ticker, "owner": owner, "event_day": res.event_day,
                  "car": {str(h): v for h, v in res.car.items()},
                  "t_stat": {str(h): v for h, v in res.t_stat.items()}, "p_value": p,
                  "alpha": res.alpha, "beta": res.beta, "sigma": res.sigma, "window": res.window},
    )


def studied_rows(trades: pd.DataFrame) -> np.ndarray:
    """Positions of the trades an event study takes, in order: ``type.isin(DIRECTION) & ticker.notna()
    & (asset_type.isna() | asset_type == "Stock")`` on plain arrays (pandas ops cost more than ~100 rows)."""
    all_types, all_tickers = trades["type"].to_numpy(), trades["ticker"].to_numpy()
    keep = np.fromiter((t in DIRECTION for t in all_types), bool, len(all_types)) & ~pd.isna(all_tickers)
    if "asset_type" in trades:  # isna() | == "Stock", element by element (~100 trades): no pandas ops
        keep &= np.fromiter((x == "Stock" if isinstance(x, str) else x is None or bool(pd.isna(x))
                             for x in trades["asset_type"].to_numpy()), bool, len(trades))
    return np.flatnonzero(keep)


def abnormal_returns(trades: pd.DataFrame, closes: dict, market, *,
                     alpha: float = 0.01) -> tuple[list[Finding], dict]:
    """Findings for trades followed by significant abnormal returns in the trade's favour, and a summary.

    ``closes``/``market``: date-indexed Series or (epoch days, close) array pairs."""
    rows = studied_rows(trades)
    all_types, all_tickers = trades["type"].to_numpy(), trades["ticker"].to_numpy()
    market = as_arrays(market)
    out: list[Finding] = []
    tx = trades["transaction_date"].to_numpy()[rows]
    event_days = tx.astype("datetime64[D]").astype(np.int64)
    tickers, types = all_tickers[rows], all_types[rows]
    ids, hashes = trades["id"].to_numpy()[rows], trades["row_hash"].to_numpy()[rows]
    owners, amounts = trades["owner"].to_numpy()[rows], trades["amount_raw"].to_numpy()[rows]
    signs = np.array([DIRECTION[t] for t in types], dtype=np.int64)
    order = np.argsort(tickers, kind="stable")  # events by ticker, in row order within one
    cuts = np.r_[0, np.flatnonzero(tickers[order][1:] != tickers[order][:-1]) + 1, len(order)] if len(order) else []
    groups = [g for g in (order[a:b] for a, b in zip(cuts[:-1], cuts[1:]))
              if tickers[g[0]] in closes and len(as_arrays(closes[tickers[g[0]]])[0]) >= MIN_ESTIMATION_DAYS]
    days, r, m, bounds = aligned_many([closes[tickers[g[0]]] for g in groups], market)
    events = np.concatenate(groups) if groups else np.empty(0, np.intp)
    stock = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    start, end = bounds[stock], bounds[stock + 1]
    # each event's day 0 within its own stock: searchsorted on (stock, day) keys, increasing over the stocks
    key = np.repeat(np.arange(len(groups), dtype=np.int64), np.diff(bounds)) << 32
    day0 = np.searchsorted(key + days, (stock.astype(np.int64) << 32) + event_days[events])
    fits = _fits(r, m, day0, start, end, HORIZONS, ESTIMATION, MIN_ESTIMATION_DAYS)
    studied, events, start, end = len(fits[0]), events[fits[0]], start[fits[0]], end[fits[0]]
    signed = signs[events] * fits[5][:, HORIZONS.index(PRIMARY)]
    t_p = fits[6][:, HORIZONS.index(PRIMARY)]
    kept = np.flatnonzero(~((np.abs(t_p) <= _t_critical(alpha, _width(ESTIMATION) - 2)) | (signed <= 0))
                          if studied else [])  # n_estimation - 2 degrees of freedom, as _finding's p
    for j in kept:
        a, b = start[j], end[j]
        res = _result(days[a:b], r[a:b], m[a:b], _fit_of(fits, j, a, HORIZONS, ESTIMATION), HORIZONS)
        i = events[j]
        out.append(_finding(res, tickers[i], int(signs[i]), tx[i], int(ids[i]), str(hashes[i]), alpha, owners[i],
                            amounts[i]))
    out.sort(key=lambda f: f.subject)
    summary = {"events_studied": studied,
               "mean_signed_car_20": float(np.mean(signed)) if studied else None}
    return out, summary
