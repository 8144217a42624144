"""Our own detectors: vectorised over one bar series (numpy / TA-Lib indicators).

Every detector takes ``Bars`` and returns ``Hits`` (bar indices, confidence in 0..1,
indicator arrays for the event's ``indicators``). Levels always use bars *before*
the current one, so a bar never confirms itself. Parameters are module constants
(documented below) so the backfill, the live path and the backtests agree.

Detectors, parameters and confidence:

- Volume_Spike: volume / mean(volume of the 20 prior bars) >= 2.0.
  confidence = 0.5 + 0.5 * clip((rv - 2) / 4, 0, 1)  (2x -> 0.50, 6x or more -> 1.00)
- Price_Breakout: close > highest high of the 20 prior bars.
  confidence = 0.5 + 0.3 * clip(excess / ATR14, 0, 1) + 0.2 * clip(rv - 1, 0, 1)
- Price_Breakdown: close < lowest low of the 20 prior bars (mirror of Price_Breakout).
- Resistance_Break: close crosses above the highest close of the 60 prior bars
  (previous close at or below it). confidence = 0.5 + 0.5 * clip(excess / ATR14, 0, 1)
- Support_Test: low comes within 0.5 ATR14 of the lowest low of the 20 prior bars
  (or dips below it) and the close stays above that support.
  confidence = 0.5 + 0.5 * clip((close - support) / ATR14, 0, 1)  (a firm bounce ranks higher)
- Gap_Up / Gap_Down: open above the prior high (below the prior low) by >= 0.5 %.
  confidence = 0.5 + 0.5 * clip(gap% / 3 %, 0, 1)
- RSI_Oversold / RSI_Overbought: RSI14 crosses below 30 / above 70.
  confidence = 0.5 + 0.5 * clip(distance beyond the line / 15, 0, 1)
- Golden_Cross / Death_Cross: SMA50 crosses above / below SMA200. confidence 0.7
  (+0.2 when the bar's relative volume >= 1.5): a slow, well-known signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import talib

from .candlesticks import relative_volume

VOLUME_WINDOW, VOLUME_SPIKE_RATIO = 20, 2.0
BREAKOUT_WINDOW = 20
RESISTANCE_WINDOW = 60
SUPPORT_WINDOW, SUPPORT_ATR_TOLERANCE = 20, 0.5
GAP_MIN_PCT = 0.5
ATR_PERIOD, RSI_PERIOD = 14, 14


@dataclass
class Bars:
    """One symbol's bars as float arrays, oldest first."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def atr(self) -> np.ndarray:
        if "atr" not in self._cache:
            self._cache["atr"] = talib.ATR(self.high, self.low, self.close, ATR_PERIOD)
        return self._cache["atr"]

    @property
    def rel_volume(self) -> np.ndarray:
        if "rv" not in self._cache:
            self._cache["rv"] = relative_volume(self.volume, VOLUME_WINDOW)
        return self._cache["rv"]


@dataclass(frozen=True)
class Hits:
    index: np.ndarray
    confidence: np.ndarray
    indicators: dict[str, np.ndarray]  # arrays aligned with ``index``


def _once(b: Bars, key: tuple, make: Callable[[], object]):
    """An intermediate two detectors share (the 20-bar low, the gaps, the SMAs, RSI), computed once per series."""
    if key not in b._cache:
        b._cache[key] = make()
    return b._cache[key]


def _clip01(x: np.ndarray) -> np.ndarray:
    """clip(nan_to_num(x), 0, 1): fmax drops NaN to 0 and fmin caps +inf at 1, in two ufuncs."""
    return np.fmin(np.fmax(x, 0.0), 1.0)


Raw = tuple  # (index, confidence, indicators) at the hit bars, before rounding


def _raw(idx: np.ndarray, conf: np.ndarray, **indicators: np.ndarray) -> Raw:
    return idx, conf, indicators


def _detector(raw: Callable[[Bars], Raw]) -> Callable[[Bars], Hits]:
    """The public detector: ``raw``'s values with the confidence rounded to 2 places and the indicators
    to 4. ``detector.raw`` is kept so ``detection.scan_hits`` can round every detector's values in one
    call each. The first version also clipped the confidence to [0, 1]: every formula below is
    0.5 + 0.5 * clip01(.), 0.5 + 0.3 * clip01(.) + 0.2 * clip01(.) or 0.7 / 0.9, i.e. in [0.5, 1.0]
    (float + and * are monotonic, and each is exactly 1.0 at its largest inputs), so that clip was
    the identity."""
    def detector(b: Bars) -> Hits:
        idx, conf, ind = raw(b)
        return Hits(idx, conf.round(2), {k: v.round(4) for k, v in ind.items()})

    detector.__name__, detector.__qualname__, detector.__doc__ = raw.__name__, raw.__qualname__, raw.__doc__
    detector.raw = raw
    return detector


# How the detectors below are computed (issue #16 item 3): each needs the full series only for
# its mask; the confidence and the indicators are computed at the hit bars only (the same
# elementwise formulas, so the same floats). "The n bars before bar i" is TA-Lib's window
# ending at bar i - 1: with r = talib.MAX(x, n), bar i >= 1 compares against r[i - 1], so a
# mask over bars 1..n-1 is built from x[1:] and r[:-1] (views) and its hits j are bars j + 1.
# ``tests/workers/patterns/reference_detectors.py`` keeps the first, full-series version;
# the tests and the backfill benchmark check every hit against it.


@_detector
def volume_spike(b: Bars) -> Raw:
    rv = b.rel_volume
    idx = np.flatnonzero(rv >= VOLUME_SPIKE_RATIO)
    r = rv[idx]
    return _raw(idx, 0.5 + 0.5 * _clip01((r - VOLUME_SPIKE_RATIO) / 4.0), relative_volume=r)


@_detector
def price_breakout(b: Bars) -> Raw:
    high = talib.MAX(b.high, BREAKOUT_WINDOW)
    j = np.flatnonzero(b.close[1:] > high[:-1])  # close - level > 0, the same for every float
    idx = j + 1
    level, atr, rv = high[j], b.atr[idx], b.rel_volume[idx]
    conf = 0.5 + 0.3 * _clip01((b.close[idx] - level) / atr) + 0.2 * _clip01(rv - 1)
    return _raw(idx, conf, breakout_level=level, atr=atr, relative_volume=rv)


def _low(b: Bars, n: int) -> np.ndarray:
    """talib.MIN(low, n): the breakdown level and the support (both 20 bars), computed once."""
    return _once(b, ("min_low", n), lambda: talib.MIN(b.low, n))


@_detector
def price_breakdown(b: Bars) -> Raw:
    low = _low(b, BREAKOUT_WINDOW)
    j = np.flatnonzero(b.close[1:] < low[:-1])  # level - close > 0
    idx = j + 1
    level, atr, rv = low[j], b.atr[idx], b.rel_volume[idx]
    conf = 0.5 + 0.3 * _clip01((level - b.close[idx]) / atr) + 0.2 * _clip01(rv - 1)
    return _raw(idx, conf, breakdown_level=level, atr=atr, relative_volume=rv)


@_detector
def resistance_break(b: Bars) -> Raw:
    top = talib.MAX(b.close, RESISTANCE_WINDOW)
    j = np.flatnonzero(b.close[1:] > top[:-1])
    j = j[b.close[j] <= top[j]]  # the previous close (bar j) at or below the level
    idx = j + 1
    level, atr = top[j], b.atr[idx]
    return _raw(idx, 0.5 + 0.5 * _clip01((b.close[idx] - level) / atr), resistance=level, atr=atr)


@_detector
def support_test(b: Bars) -> Raw:
    support = _low(b, SUPPORT_WINDOW)[:-1]
    j = np.flatnonzero((b.low[1:] <= support + SUPPORT_ATR_TOLERANCE * b.atr[1:]) & (b.close[1:] > support))
    idx = j + 1
    level, atr = support[j], b.atr[idx]
    return _raw(idx, 0.5 + 0.5 * _clip01((b.close[idx] - level) / atr), support=level, atr=atr)


def _gaps(b: Bars) -> tuple[np.ndarray, np.ndarray]:
    """Gap up / gap down in % of bars 1..n-1 against the prior bar's high / low."""
    return _once(b, ("gaps",), lambda: _gap_pcts(b))


def _gap_pcts(b: Bars) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100 * (b.open[1:] / b.high[:-1] - 1), 100 * (1 - b.open[1:] / b.low[:-1])


@_detector
def gap_up(b: Bars) -> Raw:
    up, _ = _gaps(b)
    j = np.flatnonzero(up >= GAP_MIN_PCT)
    u = up[j]
    return _raw(j + 1, 0.5 + 0.5 * _clip01(u / 3.0), gap_pct=u)


@_detector
def gap_down(b: Bars) -> Raw:
    _, down = _gaps(b)
    j = np.flatnonzero(down >= GAP_MIN_PCT)
    d = down[j]
    return _raw(j + 1, 0.5 + 0.5 * _clip01(d / 3.0), gap_pct=-d)


def _rsi(b: Bars) -> np.ndarray:
    return _once(b, ("rsi",), lambda: talib.RSI(b.close, RSI_PERIOD))


@_detector
def rsi_oversold(b: Bars) -> Raw:
    rsi = _rsi(b)
    idx = np.flatnonzero((rsi[1:] < 30) & (rsi[:-1] >= 30)) + 1
    r = rsi[idx]
    return _raw(idx, 0.5 + 0.5 * _clip01((30 - r) / 15), rsi=r)


@_detector
def rsi_overbought(b: Bars) -> Raw:
    rsi = _rsi(b)
    idx = np.flatnonzero((rsi[1:] > 70) & (rsi[:-1] <= 70)) + 1
    r = rsi[idx]
    return _raw(idx, 0.5 + 0.5 * _clip01((r - 70) / 15), rsi=r)


def _ma_cross(b: Bars, up: bool) -> Raw:
    fast, slow, diff = _once(b, ("sma_cross",), lambda: _sma_diff(b))
    now, prev = diff[1:], diff[:-1]
    idx = np.flatnonzero((now > 0) & (prev <= 0) if up else (now < 0) & (prev >= 0)) + 1
    conf = 0.7 + 0.2 * (b.rel_volume[idx] >= 1.5)  # NaN compares False, as nan_to_num's 0 did
    return _raw(idx, conf, sma50=fast[idx], sma200=slow[idx])


def _sma_diff(b: Bars) -> tuple[np.ndarray, ...]:
    fast, slow = talib.SMA(b.close, 50), talib.SMA(b.close, 200)
    return fast, slow, fast - slow


@_detector
def golden_cross(b: Bars) -> Raw:
    return _ma_cross(b, True)


@_detector
def death_cross(b: Bars) -> Raw:
    return _ma_cross(b, False)


# name -> (detector, direction: +1 bullish, -1 bearish, 0 neutral)
DETECTORS: dict[str, tuple[Callable[[Bars], Hits], int]] = {
    "Volume_Spike": (volume_spike, 0),
    "Price_Breakout": (price_breakout, 1),
    "Price_Breakdown": (price_breakdown, -1),
    "Resistance_Break": (resistance_break, 1),
    "Support_Test": (support_test, 1),
    "Gap_Up": (gap_up, 1),
    "Gap_Down": (gap_down, -1),
    "RSI_Oversold": (rsi_oversold, 1),
    "RSI_Overbought": (rsi_overbought, -1),
    "Golden_Cross": (golden_cross, 1),
    "Death_Cross": (death_cross, -1),
}
