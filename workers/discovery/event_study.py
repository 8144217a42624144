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
from .findings import DIRECTION, Finding, unit

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


def aligned_returns(stock, market) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(days, stock returns, market returns) on the days both trade; day i's return is close_i / close_{i-1} - 1."""
    sd, sc = as_arrays(stock)
    md, mc = as_arrays(market)
    if _increasing(sd) and _increasing(md):
        # both strictly increasing: the common days by binary search, the same (days, si, mi) as
        # intersect1d's concatenate + mergesort of the whole market calendar
        at = np.searchsorted(md, sd)
        common = at < len(md)
        common[common] = md[at[common]] == sd[common]
        si = np.flatnonzero(common)
        days, mi = sd[si], at[si]
    else:
        days, si, mi = np.intersect1d(sd, md, assume_unique=True, return_indices=True)
    s, m = sc[si], mc[mi]
    with np.errstate(divide="ignore", invalid="ignore"):
        r, rm = s[1:] / s[:-1] - 1, m[1:] / m[:-1] - 1
    ok = np.isfinite(r) & np.isfinite(rm)
    return days[1:][ok], r[ok], rm[ok]


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


def abnormal_returns(trades: pd.DataFrame, closes: dict, market, *,
                     alpha: float = 0.01) -> tuple[list[Finding], dict]:
    """Findings for trades followed by significant abnormal returns in the trade's favour, and a summary.

    ``closes``/``market``: date-indexed Series or (epoch days, close) array pairs."""
    keep = trades["type"].isin(list(DIRECTION)) & trades["ticker"].notna()
    if "asset_type" in trades:
        keep &= trades["asset_type"].isna() | (trades["asset_type"] == "Stock")
    rows = np.flatnonzero(keep.to_numpy())  # the kept trades' positions, in order (no filtered frame)
    market = as_arrays(market)
    out: list[Finding] = []
    studied, cars = 0, []
    tx = trades["transaction_date"].to_numpy()[rows]
    event_days = tx.astype("datetime64[D]").astype(np.int64)
    tickers, types = trades["ticker"].to_numpy()[rows], trades["type"].to_numpy()[rows]
    ids, hashes = trades["id"].to_numpy()[rows], trades["row_hash"].to_numpy()[rows]
    order = np.argsort(tickers, kind="stable")
    aligned: dict[str, tuple | None] = {}
    for i in order:
        ticker = tickers[i]
        if ticker not in aligned:
            close = closes.get(ticker)
            aligned[ticker] = (aligned_returns(close, market)
                               if close is not None and len(as_arrays(close)[0]) >= MIN_ESTIMATION_DAYS else None)
        if aligned[ticker] is None:
            continue
        fit = _fit(*aligned[ticker], int(event_days[i]), HORIZONS, ESTIMATION, MIN_ESTIMATION_DAYS)
        if fit is None:
            continue
        studied += 1
        sign = DIRECTION[types[i]]
        car_p, t_p, n_est = fit[5][PRIMARY], fit[6][PRIMARY], fit[4]
        cars.append(sign * car_p)
        if abs(t_p) <= _t_critical(alpha, n_est - 2) or sign * car_p <= 0:
            continue
        res = _result(*aligned[ticker], fit, HORIZONS)  # the picture only for the few events kept
        p = float(2 * pvalues.t_sf(abs(res.t_stat[PRIMARY]), res.n_estimation - 2))
        verb = "bought" if sign > 0 else "sold"
        when = pd.Timestamp(tx[i])
        out.append(Finding(
            kind="abnormal_return", subject=str(hashes[i]), score=unit(abs(res.car[PRIMARY]) / 0.20),
            confidence=unit(1 - p),
            description=(f"{ticker} {verb} on {when:%Y-%m-%d} was followed by a "
                         f"{res.car[PRIMARY]:+.1%} abnormal return over {PRIMARY} trading days against the "
                         f"S&P 500 (t={res.t_stat[PRIMARY]:.2f}; 5 d {res.car[5]:+.1%}, 60 d {res.car[60]:+.1%})."),
            parameters={"estimation_window": list(ESTIMATION), "horizons": list(HORIZONS), "alpha": alpha,
                        "model": "market model OLS vs GSPC"},
            evidence={"trade_id": int(ids[i]), "ticker": ticker, "event_day": res.event_day,
                      "car": {str(h): v for h, v in res.car.items()},
                      "t_stat": {str(h): v for h, v in res.t_stat.items()}, "p_value": p,
                      "alpha": res.alpha, "beta": res.beta, "sigma": res.sigma, "window": res.window},
        ))
    out.sort(key=lambda f: f.subject)
    summary = {"events_studied": studied,
               "mean_signed_car_20": float(np.mean(cars)) if cars else None}
    return out, summary
