"""Candlestick patterns: every TA-Lib ``CDL*`` function, renamed to the consumer's names.

TA-Lib does the recognition (we never re-implement a candle rule); this module only
maps names, turns TA-Lib's signed output into a direction, and computes confidence.

TA-Lib output per bar: 0 = none, +100 / -100 = bullish / bearish, +-200 = confirmed
(Hikkake family). Confidence in 0..1, rounded to 2 places:

    confidence = 0.55 (signal) or 0.75 (confirmed, |value| = 200)
               + 0.10 * clip(relative_volume - 1, 0, 1)        volume behind the candle
               + 0.10 if the candle reverses the prior 10-bar trend (bullish after a
                      close below its 10-bar mean, bearish after one above)
               clipped to [0, 1].

Why: TA-Lib gives a yes/no; the consumer ranks by confidence, and volume and trend
context are the two standard qualifiers of a candle signal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import talib
from talib import abstract

# The consumer's spellings where TA-Lib's display name differs.
NAME_OVERRIDES = {
    "CDLENGULFING": "Engulfing",
    "CDLHARAMI": "Harami",
    "CDLHARAMICROSS": "HaramiCross",
    "CDLPIERCING": "PiercingLine",
    "CDL3WHITESOLDIERS": "ThreeWhiteSoldiers",
    "CDLHIKKAKE": "Hikkake",
    "CDLHIKKAKEMOD": "ModifiedHikkake",
    "CDLTAKURI": "Takuri",
    "CDLKICKINGBYLENGTH": "KickingByLength",
    "CDLGAPSIDESIDEWHITE": "GapSideBySideWhite",
    "CDLXSIDEGAP3METHODS": "GapThreeMethods",
    "CDLRISEFALL3METHODS": "RisingFallingThreeMethods",
    "CDLINNECK": "InNeck",
    "CDLONNECK": "OnNeck",
    "CDLTHRUSTING": "Thrusting",
    "CDLTRISTAR": "Tristar",
    "CDLHIGHWAVE": "HighWave",
    "CDLLONGLINE": "LongLine",
    "CDLSHORTLINE": "ShortLine",
    "CDL3LINESTRIKE": "ThreeLineStrike",
}

VOLUME_WINDOW, TREND_WINDOW = 20, 10  # bars behind relative volume / the prior-trend mean

_NUMBERS = {"2": "Two", "3": "Three"}


def consumer_name(function: str) -> str:
    """CamelCase consumer name of a TA-Lib candlestick function (``CDLMORNINGSTAR`` -> ``MorningStar``)."""
    if function in NAME_OVERRIDES:
        return NAME_OVERRIDES[function]
    display = abstract.Function(function).info["display_name"]
    words = re.split(r"[^A-Za-z0-9]+", display)
    return "".join(_NUMBERS.get(w, w[:1].upper() + w[1:].lower()) for w in words if w and w.lower() != "pattern")


FUNCTIONS: tuple[str, ...] = tuple(talib.get_function_groups()["Pattern Recognition"])
NAMES: dict[str, str] = {f: consumer_name(f) for f in FUNCTIONS}
LOOKBACK: dict[str, int] = {f: abstract.Function(f).lookback for f in FUNCTIONS}
assert len(set(NAMES.values())) == len(FUNCTIONS), "two TA-Lib functions map to one consumer name"


@dataclass(frozen=True)
class CandleHits:
    """Where one candlestick pattern fired: bar indices, signed TA-Lib value, confidence."""

    name: str
    function: str
    index: np.ndarray
    value: np.ndarray
    confidence: np.ndarray


def raw_signals(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    """TA-Lib's output of every candlestick function, keyed by TA-Lib function name."""
    return {f: getattr(talib, f)(o, h, l, c) for f in FUNCTIONS}


def candle_confidence(value: np.ndarray, rel_volume: np.ndarray, close: np.ndarray,
                      mean10: np.ndarray) -> np.ndarray:
    """Vectorised confidence of the formula in the module docstring (inputs at the hit bars)."""
    base = np.where(np.abs(value) >= 200, 0.75, 0.55)
    vol = 0.10 * np.clip(np.nan_to_num(rel_volume, nan=1.0) - 1.0, 0.0, 1.0)
    prev_trend_down = close < mean10
    reversal = np.where(value > 0, prev_trend_down, ~prev_trend_down) & ~np.isnan(mean10)
    return np.round(np.clip(base + vol + 0.10 * reversal, 0.0, 1.0), 2)


def detect_candles(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray,
                   start: int = 0, valid_from: np.ndarray | None = None,
                   only: np.ndarray | None = None, rel_volume: np.ndarray | None = None) -> list[CandleHits]:
    """All candlestick hits at bar index >= ``start`` (and, with ``only``, where only[i] is true).

    ``valid_from`` (optional, per bar) masks bars whose TA-Lib lookback would reach
    into another series when several symbols are concatenated into one array.
    ``rel_volume`` is ``relative_volume(v)`` when the caller already has it.

    Why this shape: per function only the hit indices are taken (sparse: ~3 % of bars);
    the confidence of all 61 functions' hits is then computed in one vectorised pass and
    split back, instead of ~10 small numpy calls per function (the backfill spent twice
    TA-Lib's own time on them, issue #16 item 3).
    """
    rel_volume = relative_volume(v) if rel_volume is None else rel_volume
    mean10 = _prior_mean(c, TREND_WINDOW)
    if valid_from is not None:  # a short series must not average the previous series' bars
        rel_volume = np.where(valid_from >= VOLUME_WINDOW, rel_volume, np.nan)
        mean10 = np.where(valid_from >= TREND_WINDOW, mean10, np.nan)
    found: list[tuple[str, np.ndarray, np.ndarray]] = []
    for f in FUNCTIONS:
        signal = getattr(talib, f)(o, h, l, c)
        idx = np.flatnonzero(signal)
        if start:
            idx = idx[np.searchsorted(idx, start):]
        if only is not None:
            idx = idx[only[idx]]
        if valid_from is not None:
            idx = idx[valid_from[idx] >= LOOKBACK[f]]
        if idx.size:
            found.append((f, idx, signal[idx]))
    if not found:
        return []
    every = np.concatenate([i for _, i, _ in found])
    conf = candle_confidence(np.concatenate([val for _, _, val in found]), rel_volume[every], c[every],
                             mean10[every])
    cuts = np.cumsum([i.size for _, i, _ in found])[:-1]
    return [CandleHits(NAMES[f], f, idx, val, cf) for (f, idx, val), cf in zip(found, np.split(conf, cuts))]


def _prior_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of the n bars before each bar (NaN where fewer exist)."""
    sma = talib.SMA(x, n)
    out = np.full_like(x, np.nan)
    out[1:] = sma[:-1]
    return out


def relative_volume(v: np.ndarray, n: int = VOLUME_WINDOW) -> np.ndarray:
    """Volume over the mean volume of the previous n bars (NaN where undefined or zero)."""
    prior = _prior_mean(v.astype(float), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(prior > 0, v / prior, np.nan)
