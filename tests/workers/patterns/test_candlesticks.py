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
