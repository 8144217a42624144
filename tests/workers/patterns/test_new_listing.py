"""A new listing's first bars are normal input: no error, and the same answer as the per-symbol path."""

import pytest
from sqlalchemy import text

from workers.patterns import synthetic
from workers.patterns.detection import detect_frame
from workers.patterns.live_batch import detect_last

LENGTHS = list(range(1, 70)) + [199, 200, 201, 202, 261]


def _key(d):
    return (d.symbol, d.pattern, d.direction, d.confidence, d.price_change,
            tuple(sorted((k, round(v, 3)) for k, v in d.indicators.items())))


def _last_bar(symbol, frame):
    return [d for d in detect_frame(symbol, frame, "daily") if d.bar_ts == frame["ts"].iloc[-1]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_short_history_alone_equals_per_symbol_detection(seed):
    """One symbol per call (the live path of a lone new listing): 1 bar, 4 bars, 60 bars ..."""
    for n in LENGTHS:
        f = synthetic.generate(n, seed=1000 * seed + n)
        assert sorted(map(_key, detect_last(["NEW"], [f]))) == sorted(map(_key, _last_bar("NEW", f))), n


def test_short_histories_in_one_universe_tick_equal_per_symbol_detection():
    frames = {f"N{n}": synthetic.generate(n, seed=n) for n in LENGTHS}
    batch = detect_last(list(frames), list(frames.values()))
    single = [d for s, f in frames.items() for d in _last_bar(s, f)]
    assert sorted(map(_key, batch)) == sorted(map(_key, single))
    assert single  # the long windows do fire: the comparison is not between two empty lists


def test_first_bar_of_a_new_symbol_on_a_worker(workers, engine):
    from workers.patterns.tasks import on_bar, on_bars

    f = synthetic.generate(3, seed=5)
    bars = [{"ts": r.ts.timestamp(), "open": r.open, "high": r.high, "low": r.low, "close": r.close,
             "volume": r.volume} for r in f.itertuples()]
    first = on_bar.delay("NEWLIST", "1d", bars[0]).get(timeout=60)
    assert "rejected" not in first and first["bars"] == 1, first
    second = on_bar.delay("NEWLIST", "1d", bars[1]).get(timeout=60)
    assert "rejected" not in second and second["bars"] == 2, second
    tick = on_bars.delay("1d", {"NEWLIST": bars[2], "NEWLIST2": bars[0]}).get(timeout=60)
    assert tick["rejected"] == {} and tick["bars"] == 3 + 1, tick
    with engine.connect() as c:
        stored = dict(c.execute(text("SELECT symbol, count(*) FROM market_bars WHERE symbol IN "
                                     "('NEWLIST', 'NEWLIST2') GROUP BY symbol")).all())
    assert stored == {"NEWLIST": 3, "NEWLIST2": 1}
