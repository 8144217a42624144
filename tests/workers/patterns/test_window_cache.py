"""The live path's window cache never serves stale bars, and the warm path finds what a fresh scan finds."""

from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

from loaders.prices import read_price_file
from tests.workers.patterns.helpers import store_frame
from workers.patterns import synthetic
from workers.patterns.detection import detect_frame
from workers.patterns.live_batch import PANEL_WINDOW
from workers.patterns.scanning import ingest_bar, ingest_bars, read_symbol_bars
from workers.patterns.window_cache import WindowCache

DAILY = Path(__file__).resolve().parents[3] / "data/prices/daily"
COLS = ("open", "high", "low", "close", "volume")


def _bar(frame: pd.DataFrame, i: int) -> dict:
    return {"ts": frame["ts"].iloc[i].timestamp(), **{k: float(frame[k].iloc[i]) for k in COLS}}


def _version(engine, symbol: str) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT version FROM pattern_bar_versions WHERE symbol = :s AND timeframe = '1d'"),
                         {"s": symbol}).scalar_one()


def _assert_cache_equals_db(engine, cache: WindowCache, symbol: str) -> None:
    with engine.connect() as c:
        db = read_symbol_bars(c, symbol, "1d", None).iloc[-PANEL_WINDOW:]
    w = cache.get(symbol, "1d")
    assert w is not None
    np.testing.assert_array_equal(w.epoch, db["ts"].map(pd.Timestamp.timestamp).to_numpy())
    for k in COLS:
        np.testing.assert_array_equal(w.data[k], db[k].to_numpy(dtype=float))


def _spikes(engine, symbol: str) -> set:
    with engine.connect() as c:
        return set(c.execute(text("SELECT bar_ts FROM pattern_detections WHERE symbol = :s "
                                  "AND pattern = 'Volume_Spike'"), {"s": symbol}).scalars())


def test_history_rewrite_invalidates_the_cached_window(engine):
    """A planted 5x volume spike stops being one once the loader re-adjusts history (volume x10).

    A stale cached window would still see the old volumes and publish Volume_Spike.
    """
    cache = WindowCache(100)
    frames = {s: synthetic.plant_volume_spike(synthetic.generate(300, seed=40 + i), 299, ratio=5.0)
              for i, s in enumerate(("SYNWC1", "SYNWC2"))}
    for s, f in frames.items():
        store_frame(engine, s, f.iloc[:298])
        ingest_bar(engine, None, s, "1d", _bar(f, 298), cache=cache)  # cold: fills the cache
        _assert_cache_equals_db(engine, cache, s)
    v_before = _version(engine, "SYNWC1")
    rewritten = frames["SYNWC1"].iloc[:299].assign(volume=lambda f: f["volume"] * 10)
    store_frame(engine, "SYNWC1", rewritten)  # re-adjusted history, bar 298 included
    assert _version(engine, "SYNWC1") > v_before
    v_other = _version(engine, "SYNWC2")

    hits = cache.hits
    for s, f in frames.items():
        ingest_bar(engine, None, s, "1d", _bar(f, 299), cache=cache)
        _assert_cache_equals_db(engine, cache, s)
    assert cache.hits == hits + 1  # SYNWC2 warm (append only), SYNWC1 re-read
    assert _version(engine, "SYNWC2") == v_other  # appending a newer bar keeps the version
    ts299 = frames["SYNWC1"]["ts"].iloc[299]
    assert ts299 in _spikes(engine, "SYNWC2")
    assert ts299 not in _spikes(engine, "SYNWC1")


def test_delete_and_older_insert_invalidate(engine):
    cache = WindowCache(100)
    f = synthetic.generate(300, seed=77)
    store_frame(engine, "SYNWC3", f.iloc[:290].drop(index=[280]))
    ingest_bar(engine, None, "SYNWC3", "1d", _bar(f, 290), cache=cache)
    v = _version(engine, "SYNWC3")
    store_frame(engine, "SYNWC3", f.iloc[280:281])  # a missing older bar arrives late
    assert _version(engine, "SYNWC3") == v + 1
    ingest_bar(engine, None, "SYNWC3", "1d", _bar(f, 291), cache=cache)
    _assert_cache_equals_db(engine, cache, "SYNWC3")
    with engine.begin() as c:
        c.execute(text("DELETE FROM market_bars WHERE symbol = 'SYNWC3' AND ts = :t"), {"t": f["ts"].iloc[285]})
    assert _version(engine, "SYNWC3") == v + 2
    hits = cache.hits
    ingest_bar(engine, None, "SYNWC3", "1d", _bar(f, 292), cache=cache)
    assert cache.hits == hits
    _assert_cache_equals_db(engine, cache, "SYNWC3")
    ingest_bar(engine, None, "SYNWC3", "1d", _bar(f, 293), cache=cache)  # now warm again
    assert cache.hits == hits + 1
    _assert_cache_equals_db(engine, cache, "SYNWC3")
    with engine.begin() as c:  # the newest bar withdrawn: invalid, and its re-send is an append again
        c.execute(text("DELETE FROM market_bars WHERE symbol = 'SYNWC3' AND ts = :t"), {"t": f["ts"].iloc[293]})
    ingest_bar(engine, None, "SYNWC3", "1d", _bar(f, 293), cache=cache)
    assert cache.hits == hits + 1 and _version(engine, "SYNWC3") == v + 3
    _assert_cache_equals_db(engine, cache, "SYNWC3")
    ingest_bar(engine, None, "SYNWC3", "1d", _bar(f, 294), cache=cache)
    assert cache.hits == hits + 2 and _version(engine, "SYNWC3") == v + 3
    _assert_cache_equals_db(engine, cache, "SYNWC3")


SYMBOLS = ["AAPL", "BA", "F", "GE", "JPM", "KO", "NVDA", "TSLA", "XOM", "ZION"]


def test_warm_universe_ticks_equal_fresh_detection(engine):
    """Real bars of 10 tickers (stored as WC<ticker>, apart from other tests' full histories),
    2020-03-09..2020-03-20 one tick a day: the cache is warm from day 2 and every day's stored
    detections equal ``detect_frame`` over the bars read back fresh."""
    cache = WindowCache(100)
    frames = {f"WC{s}": read_price_file(DAILY / f"{s}.csv.gz").bars for s in SYMBOLS}
    names = list(frames)
    days = [d for d in frames["WCAAPL"]["ts"] if pd.Timestamp("2020-03-09", tz="UTC") <= d
            <= pd.Timestamp("2020-03-20", tz="UTC")]
    for s, f in frames.items():
        store_frame(engine, s, f[f["ts"] < days[0]].iloc[-300:])
    for n, day in enumerate(days):
        bars = {s: _bar(f, int(np.flatnonzero(f["ts"] == day)[0])) for s, f in frames.items()}
        result, rejected = ingest_bars(engine, None, "1d", bars, cache=cache)
        assert not rejected and result.bars == len(names) * PANEL_WINDOW
        assert cache.hits == n * len(names)  # day 1 cold, then every symbol warm
        expected = set()
        with engine.connect() as c:
            for s in names:
                window = read_symbol_bars(c, s, "1d", None).iloc[-PANEL_WINDOW:].reset_index(drop=True)
                expected |= {(d.symbol, d.pattern, round(d.confidence, 2)) for d in detect_frame(s, window, "daily")
                             if d.bar_ts == day}
            stored = {(s, p, round(cf, 2)) for s, p, cf in c.execute(text(
                "SELECT symbol, pattern, confidence FROM pattern_detections WHERE tier = 'daily' AND bar_ts = :d "
                "AND symbol = ANY(:s)"), {"d": day, "s": names})}
        for s in names:
            _assert_cache_equals_db(engine, cache, s)
        assert stored == expected and result.new == len(expected), n
    assert len(days) == 10
