"""The one bar schema: every bad field of issue #9 is refused naming the field; the loader's
vectorised screen never accepts what the schema refuses."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_models.bars import BarError, check_symbol, check_timeframe, provably_valid, validate_bar

GOOD = {"ts": 1617235200.0, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1000.0}


@pytest.mark.parametrize("bad, field", [
    ("a string", "bar"), ([1, 2, 3], "bar"), (None, "bar"),
    ({**GOOD, "ts": 1e20}, "ts"), ({**GOOD, "ts": True}, "ts"), ({**GOOD, "ts": "9999-01-01"}, "ts"),
    ({**GOOD, "ts": 1617235200000}, "ts"),  # milliseconds are not read as year 53,000
    ({**GOOD, "ts": float("nan")}, "ts"), ({**GOOD, "ts": "yesterday"}, "ts"), ({**GOOD, "ts": None}, "ts"),
    ({**GOOD, "ts": 1617235201.0}, "ts"),  # a 1d bar off 00:00 UTC
    ({**GOOD, "open": float("nan")}, "open"), ({**GOOD, "volume": float("inf")}, "volume"),
    ({**GOOD, "high": float("inf")}, "high"), ({**GOOD, "volume": 1e308}, "volume"),
    ({**GOOD, "volume": -1}, "volume"), ({**GOOD, "close": 0}, "close"), ({**GOOD, "low": -3.0}, "low"),
    ({**GOOD, "open": "10"}, "open"), ({**GOOD, "open": True}, "open"), ({**GOOD, "close": [1]}, "close"),
    ({**GOOD, "high": 8.0}, "high"), ({**GOOD, "open": 12.0}, "open"), ({**GOOD, "close": 8.5}, "close"),
    ({k: v for k, v in GOOD.items() if k != "low"}, "low"), ({**GOOD, "vwap": 10.2}, "vwap"),
])
def test_each_bad_field_is_refused_by_name(bad, field):
    with pytest.raises(BarError) as e:
        validate_bar(bad, "1d")
    assert e.value.field == field and str(e.value).startswith(f"{field}: ") and e.value.kind


@pytest.mark.parametrize("symbol", ["A" * 40, "AA\x00PL", "'; DROP TABLE market_bars; --", None, "", "ſPY",
                                    "ıbm", "ＡＡＰＬ", "AAPL ", "AAPL\n", 42, "A/B", "..."])
def test_bad_symbols_are_refused_not_mapped(symbol):
    with pytest.raises(BarError) as e:
        check_symbol(symbol)
    assert e.value.field == "symbol"


def test_good_bars_and_symbols_pass_as_given():
    bar = validate_bar(GOOD, "1d")
    assert bar.ts == datetime(2021, 4, 1, tzinfo=timezone.utc) and bar.row()["volume"] == 1000.0
    assert validate_bar({**GOOD, "ts": "2021-04-01"}, "1d").ts == bar.ts
    assert validate_bar({**GOOD, "ts": "2021-04-01T13:30:00-04:00"}, "1min").ts.hour == 17
    assert validate_bar({**GOOD, "ts": 1617235260, "volume": 0}, "1min").volume == 0.0
    assert [check_symbol(s) for s in ("aapl", "BRK.B", "BF-B", "GSPC")] == ["AAPL", "BRK.B", "BF-B", "GSPC"]
    assert check_timeframe("1min") == "1min"
    with pytest.raises(BarError, match="timeframe"):
        check_timeframe("5m")


def test_a_bar_from_tomorrow_is_fine_a_bar_from_next_week_is_not():
    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    validate_bar({**GOOD, "ts": (day + timedelta(days=1)).timestamp()}, "1d")
    with pytest.raises(BarError, match="ts: "):
        validate_bar({**GOOD, "ts": (day + timedelta(days=7)).timestamp()}, "1d")


_num = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-10, 1e8),
                 st.sampled_from([0.0, -0.0, 1e7, 1e7 + 1, 1e12, 1e12 + 1e3, 5e-324]))
_ts = st.one_of(st.integers(-3_000_000_000, 4_000_000_000).map(lambda s: s * 1_000_000_000),
                st.integers(0, 20_000).map(lambda d: (d * 86_400 + 946_684_800) * 1_000_000_000),
                st.integers(0, 20_000_000).map(lambda m: (m * 60 + 946_684_800) * 1_000_000_000))


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(_ts, _num, _num, _num, _num, _num), min_size=1, max_size=8),
       st.sampled_from(["1d", "1min"]))
def test_the_loader_screen_never_accepts_a_bar_the_schema_refuses(rows, tf):
    ts = pd.to_datetime([r[0] for r in rows], utc=True)
    cols = [np.array([r[k] for r in rows], dtype=float) for k in range(1, 6)]
    ok = provably_valid(ts, *cols, tf)
    for i in np.flatnonzero(ok):
        bar = {"ts": ts[i].to_pydatetime(), **dict(zip(("open", "high", "low", "close", "volume"),
                                                       (float(c[i]) for c in cols)))}
        validate_bar(bar, tf)  # raises if the screen was wrong


def test_the_screen_accepts_ordinary_bars():
    """The fast path must not send every real bar through pydantic (a screen that says no to all
    would pass the property above)."""
    ts = pd.date_range("2020-01-01", periods=500, freq="D", tz="UTC")
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 500)))
    assert provably_valid(ts, close, close * 1.01, close * 0.99, close, np.full(500, 1e6), "1d").all()
