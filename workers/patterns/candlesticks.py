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
    """Vectorised confidence of the formula in the module docstring (inputs at the hit bars).

    The volume term is clip(nan_to_num(rv, nan=1) - 1, 0, 1) written as fmin(fmax(rv - 1, 0), 1)
    (NaN -> 0, +-inf -> 1 / 0: the same values in two ufuncs); the sum lies in [0.55, 0.95], so
    the final clip to [0, 1] of the first version is the identity and is not repeated
    (``tests/workers/patterns/reference_detectors.py`` keeps that version; the tests compare).
    """
    base = np.where(np.abs(value) >= 200, 0.75, 0.55)
    vol = 0.10 * np.fmin(np.fmax(rel_volume - 1.0, 0.0), 1.0)
    # bullish after a close below the prior mean, bearish after one at or above it; no mean, no bonus
    reversal = ((value > 0) == (close < mean10)) & (mean10 == mean10)
    return (base + vol + 0.10 * reversal).round(2)


@dataclass(frozen=True)
class FlatCandleHits:
    """Every candlestick hit of one scan in flat arrays, ordered by function (``FUNCTIONS`` order)
    then bar: function ``functions[k]``'s hits are ``index[bounds[k]:bounds[k + 1]]`` (and the same
    slice of ``value`` / ``confidence``). Only functions with at least one hit are listed."""

    functions: list[str]
    bounds: list[int]
    index: np.ndarray
    value: np.ndarray
    confidence: np.ndarray


_LOOKBACK = np.array([LOOKBACK[f] for f in FUNCTIONS])


def flat_candle_hits(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray,
                     start: int = 0, valid_from: np.ndarray | None = None,
                     only: np.ndarray | None = None, rel_volume: np.ndarray | None = None,
                     functions: tuple[str, ...] = FUNCTIONS) -> FlatCandleHits:
    """``detect_candles``' hits in flat arrays (see ``FlatCandleHits``); the same arguments, plus
    ``functions``, a subset of ``FUNCTIONS`` in its order (the others are not run).

    Why this shape (issue #16 item 3): the 61 TA-Lib outputs are concatenated and their hits
    found with one ``nonzero`` of one boolean array (``flatnonzero`` on each int32 output cost
    ~5 us per function, a fifth of TA-Lib's own time); the confidence of all hits is one
    vectorised pass, and the caller slices per function instead of building 61 objects.
    """
    n, nf = len(c), len(functions)
    signals = np.concatenate([getattr(talib, f)(o, h, l, c) for f in functions]) if n and nf else \
        np.zeros(0, np.int32)
    flat = np.flatnonzero(signals != 0)  # function-major, bars ascending within a function
    value = signals[flat]
    counts = np.diff(np.searchsorted(flat, np.arange(nf + 1) * n))
    rows = np.repeat(np.arange(nf), counts)
    index = flat - rows * n
    keep = None
    if start:
        keep = index >= start
    if only is not None:
        keep = only[index] if keep is None else keep & only[index]
    if valid_from is not None:
        lookback = _LOOKBACK if functions is FUNCTIONS else np.array([LOOKBACK[f] for f in functions])
        ok = valid_from[index] >= lookback[rows]
        keep = ok if keep is None else keep & ok
    if keep is not None:
        index, value, rows = index[keep], value[keep], rows[keep]
        counts = np.bincount(rows, minlength=nf)
    # relative volume and the prior 10-bar mean only at the hit bars (elementwise equal to the full series')
    if rel_volume is None:
        rv = _rel_volume_at(v, index)
    else:
        rv = rel_volume[index]
    sma10 = talib.SMA(c, TREND_WINDOW) if n else np.zeros(0)
    mean10 = np.where(index > 0, sma10[index - 1], np.nan) if index.size else np.zeros(0)
    if valid_from is not None:  # a short series must not average the previous series' bars
        vf = valid_from[index]
        rv = np.where(vf >= VOLUME_WINDOW, rv, np.nan)
        mean10 = np.where(vf >= TREND_WINDOW, mean10, np.nan)
    conf = candle_confidence(value, rv, c[index], mean10)
    has = np.flatnonzero(counts)
    ends = np.cumsum(counts).tolist()
    bounds = [0] + [ends[k] for k in has.tolist()]
    return FlatCandleHits([functions[k] for k in has.tolist()], bounds, index, value, conf)


def detect_candles(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray,
                   start: int = 0, valid_from: np.ndarray | None = None,
                   only: np.ndarray | None = None, rel_volume: np.ndarray | None = None) -> list[CandleHits]:
    """All candlestick hits at bar index >= ``start`` (and, with ``only``, where only[i] is true).

    ``valid_from`` (optional, per bar) masks bars whose TA-Lib lookback would reach
    into another series when several symbols are concatenated into one array.
    ``rel_volume`` is ``relative_volume(v)`` when the caller already has it.
    One ``CandleHits`` per function with a hit, in ``FUNCTIONS`` order (``flat_candle_hits``).
    """
    fh = flat_candle_hits(o, h, l, c, v, start, valid_from, only, rel_volume)
    b = fh.bounds
    return [CandleHits(NAMES[f], f, fh.index[b[k]:b[k + 1]], fh.value[b[k]:b[k + 1]], fh.confidence[b[k]:b[k + 1]])
            for k, f in enumerate(fh.functions)]


def _rel_volume_at(v: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``relative_volume(v)[index]``, dividing only at ``index``."""
    if not index.size:
        return np.zeros(0)
    sma = talib.SMA(v.astype(float), VOLUME_WINDOW)
    prior = np.where(index > 0, sma[index - 1], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(prior > 0, v[index] / prior, np.nan)


def _prior_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of the n bars before each bar (NaN where fewer exist)."""
    sma = talib.SMA(x, n)
    out = np.full_like(x, np.nan)
    out[1:] = sma[:-1]
    return out


def relative_volume(v: np.ndarray, n: int = VOLUME_WINDOW) -> np.ndarray:
    """Volume over the mean volume of the previous n bars (NaN where undefined or zero).

    Divides only where that mean is > 0 (the other bars stay NaN), so no division warning needs
    silencing: the same values as ``where(prior > 0, v / prior, nan)``, without an ``errstate``."""
    sma = talib.SMA(v.astype(float), n)
    out = np.full(len(sma), np.nan)
    prior = sma[:-1]
    np.divide(v[1:], prior, out=out[1:], where=prior > 0)
    return out
