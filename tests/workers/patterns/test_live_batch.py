"""The universe-at-once live path finds exactly what the per-symbol detectors find, on real bars."""

from pathlib import Path

import pytest

from loaders.prices import read_price_file
from workers.patterns.detection import detect_frame
from workers.patterns.live_batch import PANEL_WINDOW, detect_last

DAILY = Path(__file__).resolve().parents[3] / "data/prices/daily"
SYMBOLS = ["AAPL", "AMZN", "BA", "CVX", "F", "GE", "JPM", "KO", "MSFT", "NVDA", "PFE", "T", "TSLA", "XOM", "ZION"]


@pytest.fixture(scope="module")
def frames():
    return {s: read_price_file(DAILY / f"{s}.csv.gz").bars for s in SYMBOLS}


def _key(d):
    return (d.symbol, d.pattern, d.direction, d.confidence, d.bar_ts,
            tuple(sorted((k, round(v, 3)) for k, v in d.indicators.items())))


@pytest.mark.parametrize("end", ["2020-03-12", "2020-03-16", "2020-11-09", "2021-01-27", "2016-06-24"])
def test_batch_last_bar_equals_per_symbol_detection(frames, end):
    windows = []
    for s in SYMBOLS:
        f = frames[s]
        f = f[f["ts"] <= end].iloc[-PANEL_WINDOW:].reset_index(drop=True)
        windows.append(f)
    batch = detect_last(SYMBOLS, windows)
    single = [d for s, f in zip(SYMBOLS, windows) for d in detect_frame(s, f, "daily")
              if d.bar_ts == f["ts"].iloc[-1]]
    assert sorted(map(_key, batch)) == sorted(map(_key, single))
    assert len(single) > len(SYMBOLS)  # real market days: plenty to compare
