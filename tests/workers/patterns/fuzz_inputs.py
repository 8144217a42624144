"""Hypothesis strategies for live bars: valid ones, and bad ones that know which fields they broke.

A bad input is built by breaking a valid one on purpose (a value no rule can accept), so the
oracle does not depend on the schema under test: each carries the set of fields an error may
name (one field broken: that field; several: any of them).
"""

from __future__ import annotations

import random
import re
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DAY = 86_400
FIRST_DAY = 10_957  # 2000-01-01 in days since the epoch
LAST_DAY = int(time.time() // DAY) - 1
_TICKER = re.compile(r"[A-Za-z0-9]{1,10}(?:[.\-][A-Za-z0-9]{1,5})?")  # what a ticker may be
FIELDS = ("ts", "open", "high", "low", "close", "volume")

_junk = st.one_of(st.none(), st.booleans(), st.text(max_size=12), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                  st.sampled_from(["abc", "", "12.5", "1e3", "NaN", "'; DROP TABLE market_bars; --", "\x00"]))
_bad_price = st.one_of(_junk, st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -1.0, 0.0, -0.0,
                                               1.5e7, 10 ** 30, -(10 ** 30)]),
                       st.floats(max_value=0.0), st.floats(min_value=1.0000001e7, allow_infinity=True))
_bad_volume = st.one_of(_junk, st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -1.0, 1.1e12]),
                        st.floats(max_value=-1e-300), st.floats(min_value=1.0001e12, allow_infinity=True))


def _bad_ts(timeframe: str):
    grid = DAY if timeframe == "1d" else 60
    return st.one_of(
        _junk.filter(lambda x: not isinstance(x, str) or x.strip()[:4].isdigit() is False),
        st.sampled_from([1e20, -1e20, float("nan"), float("inf"), "9999-01-01", "garbage", "2021-13-45",
                         "1850-06-01", -2_500_000_000]),
        st.integers(FIRST_DAY, LAST_DAY).map(lambda d: d * DAY * 1000),  # milliseconds
        st.integers(FIRST_DAY, LAST_DAY).flatmap(  # off the grid by 1 s .. grid - 1 s
            lambda d: st.integers(1, grid - 1).map(lambda k: float(d * DAY + k))),
        st.integers(30, 10_000).map(lambda d: float((LAST_DAY + d) * DAY)),  # the future
    )


@st.composite
def good_bar(draw, timeframe: str = "1d") -> dict:
    day = draw(st.integers(FIRST_DAY, LAST_DAY))
    minute = draw(st.integers(0, 1439)) if timeframe == "1min" else 0
    o = draw(st.floats(0.01, 1e5))
    c = o * draw(st.floats(0.8, 1.25))
    hi = max(o, c) * draw(st.floats(1.0, 1.1))
    lo = min(o, c) * draw(st.floats(0.9, 1.0))
    return {"ts": float(day * DAY + minute * 60), "open": o, "high": hi, "low": lo, "close": c,
            "volume": float(draw(st.integers(0, 10 ** 9)))}


def sample(strategy, n: int) -> list:
    """``n`` values of ``strategy`` drawn by hypothesis (its edge-case bias included)."""
    out: list = []

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(x):
        out.append(x)

    run()
    return out


class Pools:
    """Hypothesis-drawn pools of good bars and bad values, combined by a seeded RNG into as many
    inputs as a fuzz run needs (one hypothesis example per input costs ~4 ms: 10,000 would take
    most of a minute before a single task ran)."""

    def __init__(self, seed: int = 0, n: int = 400) -> None:
        self.rng = random.Random(seed)
        self.good = {tf: sample(good_bar(tf), n) for tf in ("1d", "1min")}
        self.values = {"price": sample(_bad_price, n), "volume": sample(_bad_volume, n),
                       "ts": {tf: sample(_bad_ts(tf), n) for tf in ("1d", "1min")},
                       "shape": sample(_shape, n // 4)}
        self.symbols = sample(bad_symbol, n)
        self.timeframes = sample(bad_timeframe, n // 4)

    def good_bar(self, tf: str) -> dict:
        return dict(self.rng.choice(self.good[tf]))

    def bad_value(self, field: str, tf: str):
        pool = self.values["ts"][tf] if field == "ts" else self.values["volume" if field == "volume" else "price"]
        return self.rng.choice(pool)

    def bad_bar(self, tf: str) -> tuple[object, set[str]]:
        """(bar, fields an error may name)."""
        rng = self.rng
        kind = rng.choice(["value", "value", "value", "ohlc", "missing", "extra", "shape", "many"])
        bar = self.good_bar(tf)
        if kind == "shape":
            return rng.choice(self.values["shape"]), {"bar"}
        if kind == "missing":
            f = rng.choice(FIELDS)
            del bar[f]
            return bar, {f}
        if kind == "extra":
            name = rng.choice(["vwap", "Open", "symbol", "ts ", "trades"])
            bar[name] = rng.random()
            return bar, {name}
        if kind == "ohlc":  # finite, positive, in range, but inconsistent
            which = rng.choice(["open_high", "close_high", "open_low", "close_low", "high_low"])
            if which in ("open_high", "close_high"):
                bar[which.split("_")[0]] = bar["high"] * 1.5 + 0.01
            elif which in ("open_low", "close_low"):
                bar[which.split("_")[0]] = bar["low"] / 2
            else:
                bar["high"], bar["low"] = bar["low"] / 2, bar["high"]
            return bar, {"open", "high", "low", "close"}
        fields = rng.sample(FIELDS, 1 if kind == "value" else rng.randint(2, 4))
        for f in fields:
            bar[f] = self.bad_value(f, tf)
        # a broken price can make the others look inconsistent: any price may then be named
        prices = {"open", "high", "low", "close"}
        return bar, set(fields) | (prices if set(fields) & prices else set())


_shape = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=20), st.lists(st.floats(), max_size=6))

bad_symbol = st.one_of(
    st.none(), st.integers(), st.floats(), st.lists(st.text(max_size=3), max_size=2),
    st.sampled_from(["", " ", "A" * 40, "AA\x00PL", "'; DROP TABLE market_bars; --", "ſPY", "ıbm", "ＡＡＰＬ",
                     "AAPL ", "\nAAPL", "A/B", "..", "-A", "A.BCDEFG", "A" * 11, "$AAPL", "AAPL\u200b"]),
    st.text(min_size=1, max_size=30).filter(lambda s: not _TICKER.fullmatch(s)),
)
bad_timeframe = st.one_of(st.none(), st.integers(), st.sampled_from(["", "1D", "1m", "5min", "day", "1d ", "1min\x00"]),
                          st.text(max_size=8).filter(lambda s: s not in ("1d", "1min")))
