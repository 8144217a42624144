"""The scan's batched event study gives the per-event floats, bit for bit, on real prices.

``event_study._fits`` fits every event of a politician at once (2-D gathers, row reductions) and
``aligned_many`` aligns all its stocks at once; ``_fit`` / ``aligned_returns`` are the per-event,
per-stock definitions. Equality is ``==`` on every float, including the rejected (None) events.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loaders.price_files import read_price_file
from workers.discovery import event_study as es
from workers.discovery.findings import DIRECTION

from .helpers import PRICES, TEST_TICKERS

ARGS = (es.HORIZONS, es.ESTIMATION, es.MIN_ESTIMATION_DAYS)


def _arrays(path) -> tuple[np.ndarray, np.ndarray]:
    bars = read_price_file(path).bars
    return bars["ts"].values.astype("datetime64[D]").astype(np.int64), bars["close"].to_numpy(float)


@pytest.fixture(scope="module")
def real():
    market = _arrays(PRICES / "benchmark" / "GSPC.csv.gz")
    stocks = {t: _arrays(PRICES / "daily" / f"{t}.csv.gz") for t in TEST_TICKERS}
    # a market that does not move for a year: var_m == 0, the events _fit rejects for it
    flat = market[1].copy()
    flat[1000:1300] = flat[1000]
    return market, stocks, (market[0], flat)


def _every_day0(days: np.ndarray) -> np.ndarray:
    """Event days giving every day 0 there is: each trading day, days between, before the first, after the last."""
    return np.r_[days[0] - 5, days, days[::3] + 1, days[-1] + 3]


def _same_fit(ref: tuple | None, got: tuple | None) -> bool:
    if ref is None or got is None:
        return ref is None and got is None
    return (ref[:5] == got[:5] and ref[5] == got[5] and ref[6] == got[6]
            and [type(v) for v in ref[6].values()] == [type(v) for v in got[6].values()])


@pytest.mark.parametrize("flat_market", [False, True], ids=["gspc", "flat_gspc"])
def test_batched_fits_are_the_per_event_fits(real, flat_market):
    market, stocks, flat = real
    market = flat if flat_market else market
    names = list(stocks)
    days, r, m, bounds = es.aligned_many([stocks[t] for t in names], market)
    checked = rejected = 0
    starts, ends, day0s, refs = [], [], [], []
    for k, t in enumerate(names):
        a, b = bounds[k], bounds[k + 1]
        own = es.aligned_returns(stocks[t], market)
        assert all(np.array_equal(x, y) for x, y in zip(own, (days[a:b], r[a:b], m[a:b])))
        for e in _every_day0(own[0]):
            refs.append(es._fit(*own, int(e), *ARGS))
            day0s.append(a + int(np.searchsorted(own[0], e)))
            starts.append(a)
            ends.append(b)
    fits = es._fits(r, m, np.array(day0s), np.array(starts), np.array(ends), *ARGS)
    at = {int(p): j for j, p in enumerate(fits[0])}
    for i, ref in enumerate(refs):
        got = es._fit_of(fits, at[i], starts[i], es.HORIZONS, es.ESTIMATION) if i in at else None
        assert _same_fit(ref, got), (i, ref, got)
        checked += 1
        rejected += ref is None
    assert checked > 15_000 and 0 < rejected < checked
    # windows in range but rejected: var_m == 0, which only the flat year gives
    in_range = [ref is None and d + es.ESTIMATION[0] >= s and d + max(es.HORIZONS) < e
                for ref, d, s, e in zip(refs, day0s, starts, ends)]
    assert any(in_range) == flat_market


def test_the_binary_search_join_is_intersect1d(real):
    market, stocks, _ = real
    md = market[0] if isinstance(market, tuple) else es.as_arrays(market)[0]
    for t, stock in stocks.items():
        d = es.as_arrays(stock)[0]
        # days missing from the stock, weekend days and days past the market's end missing from the market
        sd = np.unique(np.r_[d[::2], d[::5] + 1, md[-1] + 10])
        want = np.intersect1d(sd, md, assume_unique=True, return_indices=True)
        assert all(np.array_equal(x, y) for x, y in zip(es._common_days(sd, md), want)), t


def test_aligned_many_takes_intersect1d_path_for_unordered_closes(real):
    market, stocks, _ = real
    d, c = stocks["AAPL"]
    shuffled = pd.Series(c[::-1], index=pd.to_datetime(d[::-1].astype("datetime64[D]")))
    days, r, m, bounds = es.aligned_many([stocks["MSFT"], shuffled], market)
    for k, s in enumerate((stocks["MSFT"], shuffled)):
        own = es.aligned_returns(s, market)
        assert all(np.array_equal(x, y) for x, y in zip(own, (v[bounds[k]:bounds[k + 1]] for v in (days, r, m))))


def _per_event_abnormal_returns(trades, closes, market, alpha):
    """The scan's event loop before batching (one ``_fit`` per event): the reference."""
    keep = trades["type"].isin(list(DIRECTION)) & trades["ticker"].notna()
    rows = np.flatnonzero(keep.to_numpy())
    tx = trades["transaction_date"].to_numpy()[rows]
    event_days = tx.astype("datetime64[D]").astype(np.int64)
    tickers, types = trades["ticker"].to_numpy()[rows], trades["type"].to_numpy()[rows]
    ids, hashes = trades["id"].to_numpy()[rows], trades["row_hash"].to_numpy()[rows]
    owners, amounts = trades["owner"].to_numpy()[rows], trades["amount_raw"].to_numpy()[rows]
    out, cars, aligned = [], [], {}
    for i in np.argsort(tickers, kind="stable"):
        t = tickers[i]
        if t not in aligned:
            aligned[t] = (es.aligned_returns(closes[t], market)
                          if t in closes and len(closes[t][0]) >= es.MIN_ESTIMATION_DAYS else None)
        fit = aligned[t] and es._fit(*aligned[t], int(event_days[i]), *ARGS)
        if not fit:
            continue
        sign = DIRECTION[types[i]]
        cars.append(sign * fit[5][es.PRIMARY])
        if abs(fit[6][es.PRIMARY]) <= es._t_critical(alpha, fit[4] - 2) or sign * fit[5][es.PRIMARY] <= 0:
            continue
        res = es._result(*aligned[t], fit, es.HORIZONS)
        out.append(es._finding(res, t, sign, tx[i], int(ids[i]), str(hashes[i]), alpha, owners[i], amounts[i]))
    out.sort(key=lambda f: f.subject)
    return out, {"events_studied": len(cars), "mean_signed_car_20": float(np.mean(cars)) if cars else None}


@pytest.mark.parametrize("alpha", [0.01, 0.3], ids=["alpha_0.01", "alpha_0.3"])
def test_abnormal_returns_are_the_per_event_loop_on_real_prices(real, alpha):
    market, stocks, _ = real
    closes = {**stocks, "SHORT": (stocks["T"][0][:100], stocks["T"][1][:100])}  # too short to study
    rng = np.random.default_rng(5)
    n = 1000
    span = np.arange(market[0][0] - 30, market[0][-1] + 30)
    trades = pd.DataFrame({
        "id": np.arange(1, n + 1), "row_hash": [f"h{i:04d}" for i in rng.permutation(n)],
        "ticker": rng.choice([*TEST_TICKERS, "SHORT", "NOPRICE"], n),
        "type": rng.choice(["purchase", "sale_full", "sale_partial", "exchange"], n),
        "owner": rng.choice(["self", "spouse", "joint", "dependent", None], n),
        "amount_raw": rng.choice(["$1,001 - $15,000", "$15,001 - $50,000", None], n),
        "transaction_date": np.sort(rng.choice(span, n)).astype("datetime64[D]").astype("datetime64[ns]")})
    got = es.abnormal_returns(trades, closes, market, alpha=alpha)
    ref = _per_event_abnormal_returns(trades, closes, market, alpha)
    assert got[1]["events_studied"] > 250 and len(got[0]) > 3
    assert repr(got) == repr(ref)  # every float, its type, and the order


@pytest.mark.parametrize("dtype", [object, "string"], ids=["object", "string"])
def test_studied_rows_are_the_pandas_mask(dtype):
    values = {"type": ["purchase", "sale_full", "sale_partial", "exchange", None, "purchase", "purchase", "sale_full"],
              "ticker": ["A", None, "B", "C", "D", "E", np.nan, "F"],
              "asset_type": ["Stock", None, "Option", None, "Stock", np.nan, "Stock", "Stock Option"]}
    trades = pd.DataFrame({k: pd.Series(v, dtype=dtype) for k, v in values.items()})
    mask = (trades["type"].isin(list(DIRECTION)) & trades["ticker"].notna()
            & (trades["asset_type"].isna() | (trades["asset_type"] == "Stock")))
    assert es.studied_rows(trades).tolist() == np.flatnonzero(mask.to_numpy(dtype=bool)).tolist() == [0, 5]
    assert es.studied_rows(trades.drop(columns="asset_type")).tolist() == [0, 2, 5, 7]
