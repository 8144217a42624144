"""Intraday tier on real 1-minute bars, combo tier (daily confirmed by intraday), replay feed, synthetic bars."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from loaders.prices import load_prices
from workers.patterns import replay, synthetic
from workers.patterns.detection import Detection, combine, detect_frame
from workers.patterns.scanning import scan_symbol

ROOT = Path(__file__).resolve().parents[3]


def _det(symbol, pattern, tier, ts, conf):
    return Detection(symbol, pattern, tier, ts, conf, 10.0, 1.0, 100.0, 1, {})


def test_combine_needs_an_intraday_confirmation_inside_the_window():
    day = datetime(2024, 3, 4, tzinfo=timezone.utc)
    daily = [_det("X", "Hammer", "daily", day, 0.6), _det("Y", "Doji", "daily", day, 0.7)]
    intraday = [_det("X", "Volume_Spike", "intraday", day + timedelta(hours=15), 0.9),
                _det("X", "Doji", "intraday", day + timedelta(hours=15), 1.0),  # not a confirmer
                _det("Y", "Volume_Spike", "intraday", day + timedelta(days=1, minutes=1), 1.0)]  # too late
    combos = combine(daily, intraday)
    assert [(c.symbol, c.pattern, c.tier, c.bar_ts) for c in combos] == [("X", "Hammer", "combo", day)]
    assert combos[0].confidence == round(0.6 * 0.6 + 0.4 * 0.9 + 0.1, 2)
    assert combos[0].indicators["confirmed_by"] == "Volume_Spike"


def test_synthetic_generator_is_seeded_and_plants_patterns():
    a, b = synthetic.generate(100, seed=3), synthetic.generate(100, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(synthetic.generate(100, seed=4))
    assert (a["high"] >= a[["open", "close"]].max(axis=1)).all() and (a["low"] <= a[["open", "close"]].min(axis=1)).all()
    planted = synthetic.plant_gap_up(synthetic.plant_volume_spike(a, 60), 80)
    found = {(d.pattern, d.bar_ts) for d in detect_frame("S", planted, "daily")}
    assert ("Volume_Spike", planted["ts"].iloc[60]) in found and ("Gap_Up", planted["ts"].iloc[80]) in found


def test_intraday_tier_on_real_minute_bars_then_combo(engine):
    load_prices(engine, [ROOT / "data/prices/intraday/DBB_1min.csv.gz"])
    since = datetime(2025, 7, 1, tzinfo=timezone.utc)
    res = scan_symbol(engine, None, "DBB", "intraday", since)
    assert res.new == res.detected > 0
    with engine.connect() as c:
        first = c.execute(text("SELECT min(bar_ts) FROM pattern_detections WHERE symbol = 'DBB' AND tier = 'intraday'")).scalar()
        spike_day = c.execute(text("SELECT date_trunc('day', bar_ts) FROM pattern_detections WHERE symbol = 'DBB' "
                                   "AND tier = 'intraday' AND pattern = 'Volume_Spike' ORDER BY bar_ts LIMIT 1")).scalar()
    assert first > since
    # a daily Hammer for DBB on that day (no daily DBB bars ship with the data): the combo tier confirms it
    from sqlalchemy.orm import Session

    from workers.patterns.publisher import persist_detections

    with Session(engine) as s, s.begin():
        persist_detections(s, [_det("DBB", "Hammer", "daily", spike_day, 0.6)], 24)
    combo = scan_symbol(engine, None, "DBB", "combo", spike_day - timedelta(days=1))
    assert combo.new == 1
    assert scan_symbol(engine, None, "DBB", "combo", spike_day - timedelta(days=1)).new == 0


def test_stored_detections_keep_their_direction_for_combos():
    from workers.patterns.detection import stored_direction

    # rows keep no direction: a bearish candle (TA-Lib -100) and Gap_Down (-1) must not become 0
    assert stored_direction("Engulfing", {"talib_value": -100.0, "relative_volume": 1.2}) == -1
    assert stored_direction("Hammer", {"talib_value": 100.0}) == 1
    assert stored_direction("Gap_Down", {"gap_pct": 1.1}) == -1
    assert stored_direction("Gap_Up", {}) == 1
    assert stored_direction("Unknown_Pattern", {}) == 0


def test_replay_feed_plays_bars_in_time_order_at_speed(engine):
    load_prices(engine, [ROOT / "data/prices/daily/KO.csv.gz", ROOT / "data/prices/daily/PEP.csv.gz"])
    frame = replay.stored_bars(engine, ["KO", "PEP"], "1d", datetime(2021, 4, 14, tzinfo=timezone.utc),
                               datetime(2021, 4, 21, tzinfo=timezone.utc))
    slept = []
    out = list(replay.feed(frame, speed=86400.0, sleep=slept.append))
    assert [s for s, _ in out] == ["KO", "PEP"] * 6
    ts = [b["ts"] for _, b in out]
    assert ts == sorted(ts)
    # one sleep per new bar time: a day of market time at 86400x is one second; a weekend three
    assert slept == pytest.approx([1.0, 1.0, 3.0, 1.0, 1.0])  # Wed..Fri, weekend, Mon..Wed


def test_incremental_scan_starts_near_the_end_then_follows_the_watermark(engine):
    load_prices(engine, [ROOT / "data/prices/daily/CVX.csv.gz"])
    first = scan_symbol(engine, None, "CVX", "daily", None, incremental=True, first_scan_bars=5)
    with engine.connect() as c:
        days = c.execute(text("SELECT DISTINCT bar_ts FROM pattern_detections WHERE symbol = 'CVX' ORDER BY 1")).scalars().all()
        last5 = c.execute(text("SELECT ts FROM market_bars WHERE symbol = 'CVX' AND timeframe = '1d' "
                               "ORDER BY ts DESC LIMIT 5")).scalars().all()
    assert first.new > 0 and set(days) <= set(last5)
    again = scan_symbol(engine, None, "CVX", "daily", None, incremental=True)
    assert again.detected == 0 and again.new == 0
