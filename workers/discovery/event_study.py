"""Event study: abnormal returns after a trade, against the S&P 500 (market model).

Day 0 is the first trading day on or after the transaction. The market model
``R_i = a + b R_m + e`` is fitted by OLS on trading days [-250, -30]; abnormal
returns ``AR_t = R_i,t - (a + b R_m,t)`` are summed over days 1..h for h = 5, 20,
60 (CAR), with ``t = CAR_h / (s_e sqrt(h))`` (MacKinlay 1997). A purchase followed
by a significantly positive CAR, or a sale followed by a negative one, is an
anomaly: the trade looks informed in hindsight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .findings import DIRECTION, Finding, unit

HORIZONS = (5, 20, 60)
ESTIMATION = (-250, -30)
MIN_ESTIMATION_DAYS = 120
PRIMARY = 20


@dataclass(frozen=True)
class EventResult:
    event_day: pd.Timestamp
    alpha: float
    beta: float
    sigma: float
    n_estimation: int
    car: dict[int, float]
    t_stat: dict[int, float]


def returns_frame(stock_close: pd.Series, market_close: pd.Series) -> pd.DataFrame:
    """Aligned simple returns (columns r, m) on the days both series trade."""
    both = pd.concat({"s": stock_close, "m": market_close}, axis=1, join="inner").sort_index()
    rets = both.pct_change().iloc[1:]
    return rets.rename(columns={"s": "r"}).dropna()


def event_car(rets: pd.DataFrame, event_date, horizons=HORIZONS, estimation=ESTIMATION,
              min_estimation: int = MIN_ESTIMATION_DAYS) -> EventResult | None:
    """CARs of one event on an aligned returns frame, or None when the windows do not fit the data."""
    idx = rets.index
    day0 = int(idx.searchsorted(pd.Timestamp(event_date)))
    lo, hi = day0 + estimation[0], day0 + estimation[1]
    if lo < 0 or day0 + max(horizons) >= len(idx) or hi - lo < min_estimation:
        return None
    r = rets["r"].to_numpy()
    m = rets["m"].to_numpy()
    er, em = r[lo:hi + 1], m[lo:hi + 1]
    var_m = em.var()
    if var_m == 0:
        return None
    beta = float(((em - em.mean()) * (er - er.mean())).mean() / var_m)
    alpha = float(er.mean() - beta * em.mean())
    resid = er - alpha - beta * em
    sigma = float(np.sqrt((resid ** 2).sum() / (len(er) - 2)))
    ar = r[day0 + 1:day0 + max(horizons) + 1] - alpha - beta * m[day0 + 1:day0 + max(horizons) + 1]
    car = {h: float(ar[:h].sum()) for h in horizons}
    t = {h: (car[h] / (sigma * np.sqrt(h)) if sigma > 0 else 0.0) for h in horizons}
    return EventResult(idx[day0], alpha, beta, sigma, len(er), car, t)


def abnormal_returns(trades: pd.DataFrame, closes: dict[str, pd.Series], market: pd.Series, *,
                     alpha: float = 0.01) -> tuple[list[Finding], dict]:
    """Findings for trades followed by significant abnormal returns in the trade's favour, and a summary."""
    df = trades[trades["type"].isin(list(DIRECTION)) & trades["ticker"].notna()]
    if "asset_type" in df:
        df = df[df["asset_type"].isna() | (df["asset_type"] == "Stock")]
    out: list[Finding] = []
    studied, cars = 0, []
    for ticker, g in df.groupby("ticker", sort=True):
        close = closes.get(ticker)
        if close is None or len(close) < MIN_ESTIMATION_DAYS:
            continue
        rets = returns_frame(close, market)
        for row in g.itertuples(index=False):
            res = event_car(rets, row.transaction_date)
            if res is None:
                continue
            studied += 1
            sign = DIRECTION[row.type]
            cars.append(sign * res.car[PRIMARY])
            dof = res.n_estimation - 2
            p = float(2 * stats.t.sf(abs(res.t_stat[PRIMARY]), dof))
            if p >= alpha or sign * res.car[PRIMARY] <= 0:
                continue
            verb = "bought" if sign > 0 else "sold"
            out.append(Finding(
                kind="abnormal_return", subject=str(row.row_hash), score=unit(abs(res.car[PRIMARY]) / 0.20),
                confidence=unit(1 - p),
                description=(f"{ticker} {verb} on {row.transaction_date:%Y-%m-%d} was followed by a "
                             f"{res.car[PRIMARY]:+.1%} abnormal return over {PRIMARY} trading days against the "
                             f"S&P 500 (t={res.t_stat[PRIMARY]:.2f}; 5 d {res.car[5]:+.1%}, 60 d {res.car[60]:+.1%})."),
                parameters={"estimation_window": list(ESTIMATION), "horizons": list(HORIZONS), "alpha": alpha,
                            "model": "market model OLS vs GSPC"},
                evidence={"trade_id": int(row.id), "ticker": ticker, "event_day": res.event_day,
                          "car": {str(h): v for h, v in res.car.items()},
                          "t_stat": {str(h): v for h, v in res.t_stat.items()}, "p_value": p,
                          "alpha": res.alpha, "beta": res.beta, "sigma": res.sigma},
            ))
    summary = {"events_studied": studied,
               "mean_signed_car_20": float(np.mean(cars)) if cars else None}
    return out, summary
