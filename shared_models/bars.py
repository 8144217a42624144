"""The one schema of a market bar: every writer of ``market_bars`` validates through it.

The live path (``patterns.on_bar`` / ``on_bars``), the price-file loader (``quantpipe data
load-prices``) and the CLI use this module, so a bar one entry point refuses is refused by
all, naming the same field. The rules, and why:

- ``symbol``: an ASCII ticker, 1-10 letters/digits with an optional ``.``/``-`` class suffix
  (``BRK.B``). Lower case is upper-cased *after* the ASCII check, so ``ſPY`` is refused rather
  than mapped onto ``SPY``; NUL, spaces, quotes, SQL text and 40 characters are refused.
- ``ts``: an epoch in seconds (never a bool), an ISO-8601 string (naive = UTC) or a datetime;
  between 1900 and two days from now (year 9999 or 1e20 is a typo, a millisecond epoch read
  as seconds lands there too); with a timeframe, on its grid: a ``1d`` bar at 00:00 UTC of its
  session, a ``1min`` bar on a whole minute, so one session never becomes two bars.
- prices: finite, > 0 and <= 10,000,000, with ``low <= open, close <= high``.
- ``volume``: finite, >= 0 and <= 1e12 (the whole US market trades ~1.5e10 shares a day).

Errors are ``BarError(field, reason)``: dead letters and CLI messages take the field from it.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      ValidationInfo, field_validator, model_validator)

TIMEFRAMES = ("1d", "1min")
COLUMNS = ("ts", "open", "high", "low", "close", "volume")
MAX_PRICE = 1e7
MAX_VOLUME = 1e12
MIN_TS = datetime(1900, 1, 1, tzinfo=timezone.utc)
FUTURE_SLACK_SECONDS = 2 * 86400.0  # clock skew, and sessions stamped ahead of UTC
SYMBOL_RE = re.compile(r"[A-Z0-9]{1,10}(?:[.\-][A-Z0-9]{1,5})?")


class FieldError(ValueError):
    """Input refused at the edge: ``field`` names the culprit, ``kind`` is a short category to
    count by (``not finite``, ``too large``, ``off the time grid`` ...), ``reason`` the full
    sentence with the value. ``str()`` is ``"field: reason"``."""

    def __init__(self, field: str, reason: str, kind: str | None = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.kind = field, reason, kind or reason


class BarError(FieldError):
    """A bar (or its symbol / timeframe) that cannot be stored."""


def _short(x: Any, n: int = 40) -> str:
    r = repr(x)
    return r if len(r) <= n else r[: n - 3] + "..."


def parse_symbol(value: Any) -> str:
    """The ticker in upper case, or ValueError saying why."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    if not value.isascii():
        raise ValueError(f"{_short(value)} is not ASCII (look-alike letters are refused, not mapped)")
    s = value.upper()
    if not SYMBOL_RE.fullmatch(s):
        raise ValueError(f"{_short(value)} is not a ticker (1-10 letters/digits, optional .X or -X class)")
    return s


Symbol = Annotated[str, BeforeValidator(parse_symbol)]


def check_symbol(value: Any) -> str:
    try:
        return parse_symbol(value)
    except ValueError as exc:
        raise BarError("symbol", str(exc), "not a ticker") from None


def check_timeframe(value: Any) -> str:
    if not isinstance(value, str) or value not in TIMEFRAMES:
        raise BarError("timeframe", f"{_short(value)} is not one of {', '.join(TIMEFRAMES)}", "unknown timeframe")
    return value


def _to_datetime(value: Any) -> Any:
    """Epoch seconds and ISO strings become datetimes; anything else is left to pydantic."""
    if isinstance(value, bool):
        raise BarError("ts", "a boolean is not a time", "not a time")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not MIN_TS.timestamp() <= value <= time.time() + FUTURE_SLACK_SECONDS:
            raise BarError("ts", f"epoch {_short(value)} is outside 1900 .. now + 2 days (seconds, not ms)",
                           "implausible time")
        return datetime.fromtimestamp(float(value), timezone.utc)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise BarError("ts", f"{_short(value)} is not an ISO-8601 date/time or an epoch",
                           "not a time") from None
    return value


Price = Annotated[float, Field(gt=0, le=MAX_PRICE, allow_inf_nan=False)]


class Bar(BaseModel):
    """One OHLCV bar as stored (``ts`` in UTC). Validate with ``context={"timeframe": tf}``
    to also check the time grid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: datetime
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Annotated[float, Field(ge=0, le=MAX_VOLUME, allow_inf_nan=False)]

    @field_validator("ts", mode="before")
    @classmethod
    def _parse_ts(cls, v: Any) -> Any:
        return _to_datetime(v)

    @field_validator("ts")
    @classmethod
    def _plausible_ts(cls, v: datetime, info: ValidationInfo) -> datetime:
        v = v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)
        if v < MIN_TS or v.timestamp() > time.time() + FUTURE_SLACK_SECONDS:
            raise BarError("ts", f"{v.isoformat()} is outside 1900 .. now + 2 days", "implausible time")
        tf = (info.context or {}).get("timeframe")
        if tf == "1d" and (v.hour, v.minute, v.second, v.microsecond) != (0, 0, 0, 0):
            raise BarError("ts", f"a 1d bar is stamped 00:00 UTC of its session, got {v.isoformat()}",
                           "off the time grid")
        if tf == "1min" and (v.second, v.microsecond) != (0, 0):
            raise BarError("ts", f"a 1min bar is stamped on a whole minute, got {v.isoformat()}",
                           "off the time grid")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Bar":
        if self.high < self.low:
            raise BarError("high", f"{self.high} is below low {self.low}", "below low")
        for f in ("open", "close"):
            x = getattr(self, f)
            if not self.low <= x <= self.high:
                raise BarError(f, f"{x} is outside low..high ({self.low} .. {self.high})", "outside low..high")
        return self

    def row(self) -> dict:
        return {"ts": self.ts, "open": self.open, "high": self.high, "low": self.low, "close": self.close,
                "volume": self.volume}


_KINDS = {"missing": "missing", "extra_forbidden": "unknown field", "float_parsing": "not a number",
          "float_type": "not a number", "finite_number": "not finite", "greater_than": "not positive",
          "greater_than_equal": "negative", "less_than_equal": "too large", "datetime_type": "not a time",
          "datetime_parsing": "not a time", "datetime_from_date_parsing": "not a time",
          "datetime_object_invalid": "not a time", "model_type": "not an object"}


def field_error(e: dict, cls: type[FieldError] = FieldError, whole: str = "input",
                extra_hint: str = "") -> FieldError:
    """One pydantic error entry -> an error naming the field (from its location, not its text)."""
    err = (e.get("ctx") or {}).get("error")
    if isinstance(err, FieldError):
        return err
    extra = e["type"] == "extra_forbidden" and bool(e["loc"])
    names = []
    for p in e["loc"][:-1] if extra else e["loc"]:
        if isinstance(p, int):
            continue
        if not str(p).isidentifier():  # a union member's tag ("constrained-str"), not a field
            break
        names.append(str(p))
    if extra:  # the unknown key itself, whatever its spelling
        names.append(str(e["loc"][-1]))
    field = ".".join(names) or whole
    kind = _KINDS.get(e["type"], e["type"])
    if e["type"] == "missing":
        return cls(field, "required", kind)
    if e["type"] == "extra_forbidden":
        return cls(field, f"unknown field{extra_hint}", kind)
    if e["type"] == "value_error":
        return cls(field, e["msg"].removeprefix("Value error, "), "invalid")
    return cls(field, f"{e['msg']} (got {_short(e.get('input'))})", kind)


def _bar_error(e: dict) -> BarError:
    return field_error(e, BarError, "bar", " (a bar has ts, open, high, low, close, volume)")


def validate_bar(raw: Any, timeframe: str | None = None, *, strict: bool = True) -> Bar:
    """A Bar, or BarError naming the field. ``strict`` (JSON input): numbers must be numbers;
    text input (a CSV row) is validated with ``strict=False``."""
    if not isinstance(raw, dict):
        raise BarError("bar", f"must be an object with {', '.join(COLUMNS)}; got {type(raw).__name__}",
                       "not an object")
    try:
        return Bar.model_validate(raw, strict=strict, context={"timeframe": timeframe})
    except ValidationError as exc:
        raise _bar_error(exc.errors(include_url=False)[0]) from None


def provably_valid(ts, open_, high, low, close, volume, timeframe: str):
    """Boolean mask of rows the schema is sure to accept (numpy arrays; ``ts`` datetime64[ns, UTC]).

    The loader's fast path: a file of a million rows is screened in one vectorised pass and
    only the rows not proven valid go through ``validate_bar`` (which then decides, naming the
    field). Every condition here is one of ``Bar``'s, so a row passing it passes ``Bar``
    (``tests/shared_models/test_bars.py`` checks that on generated rows).
    """
    import numpy as np
    import pandas as pd

    ts = pd.DatetimeIndex(ts)
    prices = np.vstack([open_, high, low, close]).astype(float)
    vol = np.asarray(volume, dtype=float)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(prices).all(axis=0) & (prices > 0).all(axis=0) & (prices <= MAX_PRICE).all(axis=0)
        ok &= np.isfinite(vol) & (vol >= 0) & (vol <= MAX_VOLUME)
        ok &= (prices[2] <= prices[0]) & (prices[0] <= prices[1]) & (prices[2] <= prices[3]) & (prices[3] <= prices[1])
    ok &= ~ts.isna()
    epoch = ts.asi8 / 1e9
    ok &= (epoch >= MIN_TS.timestamp()) & (epoch <= time.time() + FUTURE_SLACK_SECONDS - 60)
    if timeframe == "1d":
        ok &= (ts.asi8 % 86_400_000_000_000) == 0
    elif timeframe == "1min":
        ok &= (ts.asi8 % 60_000_000_000) == 0
    else:
        ok[:] = False
    return np.asarray(ok)
