"""Candlestick detections are TA-Lib's own, on real (split-adjusted) bars, under the consumer's names."""

from pathlib import Path

import numpy as np
import pytest
import talib

from loaders.prices import read_price_file
from workers.patterns import candlesticks
from workers.patterns.detection import detect_frame

DAILY = Path(__file__).resolve().parents[3] / "data/prices/daily"


def test_every_talib_candlestick_is_mapped_to_a_unique_consumer_name():
    assert len(candlesticks.FUNCTIONS) == 61
    names = set(candlesticks.NAMES.values())
    assert len(names) == 61
    assert {"Doji", "Hammer", "ShootingStar", "Engulfing", "Harami", "MorningStar", "EveningStar",
            "ThreeWhiteSoldiers", "ThreeBlackCrows", "PiercingLine", "DarkCloudCover"} <= names


@pytest.mark.parametrize("symbol", ["AAPL", "JPM", "XOM"])
def test_detections_equal_talib_on_real_bars(symbol):
    bars = read_price_file(DAILY / f"{symbol}.csv.gz").bars
    o, h, l, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    found = {}
    for d in detect_frame(symbol, bars, "daily", patterns=candlesticks.NAMES.values()):
        found.setdefault(d.pattern, []).append((d.bar_ts, d.direction))
    dates = list(bars["ts"])
    total = 0
    for fn, name in candlesticks.NAMES.items():
        ref = getattr(talib, fn)(o, h, l, c)
        expected = [(dates[i], int(np.sign(ref[i]))) for i in np.flatnonzero(ref)]
        assert found.get(name, []) == expected, name
        total += len(expected)
    assert total > 1000  # real bars fire plenty of candles: the comparison is not vacuous


def test_candle_confidence_formula():
    value = np.array([100, -100, 200, 100])
    rel_vol = np.array([1.0, 3.0, np.nan, 1.5])
    close = np.array([10.0, 10.0, 10.0, 12.0])
    mean10 = np.array([11.0, 11.0, np.nan, 11.0])
    # bullish after a dip: +0.10; bearish after a dip: no bonus; confirmed: 0.75; +0.05 volume
    assert list(candlesticks.candle_confidence(value, rel_vol, close, mean10)) == [0.65, 0.65, 0.75, 0.6]


def test_detect_candles_equals_the_per_function_path_with_every_mask():
    """One confidence pass over all functions' hits, split back, equals each function's own (issue #16 item 3)."""
    bars = read_price_file(DAILY / "AAPL.csv.gz").bars
    o, h, l, c, v = (bars[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close", "volume"))
    rng = np.random.default_rng(7)
    valid_from = np.concatenate([np.arange(900), np.arange(len(c) - 900)])  # two series back to back
    only = rng.random(len(c)) < 0.5
    for kw in ({}, {"start": 1500}, {"valid_from": valid_from}, {"only": only, "start": 10}):
        rv, mean10 = candlesticks.relative_volume(v), candlesticks._prior_mean(c, candlesticks.TREND_WINDOW)
        if "valid_from" in kw:
            rv = np.where(valid_from >= candlesticks.VOLUME_WINDOW, rv, np.nan)
            mean10 = np.where(valid_from >= candlesticks.TREND_WINDOW, mean10, np.nan)
        expected = []
        for f in candlesticks.FUNCTIONS:
            hit = getattr(talib, f)(o, h, l, c) != 0
            hit[:kw.get("start", 0)] = False
            if "only" in kw:
                hit &= only
            if "valid_from" in kw:
                hit &= valid_from >= candlesticks.LOOKBACK[f]
            idx = np.flatnonzero(hit)
            if idx.size:
                val = getattr(talib, f)(o, h, l, c)[idx]
                expected.append((f, idx.tolist(), val.tolist(),
                                 candlesticks.candle_confidence(val, rv[idx], c[idx], mean10[idx]).tolist()))
        got = [(ch.function, ch.index.tolist(), ch.value.tolist(), ch.confidence.tolist())
               for ch in candlesticks.detect_candles(o, h, l, c, v, **kw)]
        assert got == expected and len(got) > 20, kw


def test_candle_confidence_equals_the_first_version_on_every_kind_of_input():
    """NaN / +-inf / 0 relative volume, NaN means, closes equal to the mean, confirmed and plain signals."""
    from tests.workers.patterns.reference_detectors import candle_confidence as first_version

    rng = np.random.default_rng(3)
    n = 50_000
    value = rng.choice(np.array([100, -100, 200, -200], dtype=np.int32), n)
    rv = rng.choice([np.nan, np.inf, -np.inf, 0.0, 1.0, 1.5, 2.0, 0.5, -3.0], n) * np.where(
        rng.random(n) < 0.5, 1.0, 3 * rng.random(n))
    close = rng.random(n)
    mean10 = np.where(rng.random(n) < 0.1, np.nan, rng.random(n))
    mean10[::7] = close[::7]
    got = candlesticks.candle_confidence(value, rv, close, mean10)
    assert np.array_equal(got, first_version(value, rv, close, mean10)) and len(np.unique(got)) > 30
