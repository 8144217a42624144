"""The one schema of a closed trade, shared by ``shadow.record_trades``, the CSV
loader and the HTTP API (pydantic v2; every error names its field).

Why so strict: a trade is stored forever and every later evaluation of its
model reads it. One ``return`` of 1e308 makes r⁴ overflow and every Sharpe of
that model NaN; one NUL byte or lone surrogate makes PostgreSQL refuse the
whole INSERT; ``bool([1])`` is true. So each field accepts only what it means,
and says in plain words what was wrong:

- ``trade_id``, ``opportunity_id``: text or an integer, 1–100 characters, no
  control characters, valid Unicode;
- ``opened_at``, ``closed_at``: ISO-8601 text or a datetime, 1970–2099 (naive
  means UTC), closed not before opened;
- ``return``: a finite number in (−1, ``MAX_RETURN``] — a fraction, 0.012 = +1.2 %;
- ``pnl``: a finite number, |pnl| ≤ ``MAX_PNL`` (default 0);
- ``shadow``: true/false (also "1"/"0", "yes"/"no"); absent means "by role".

An empty text in an optional field (a blank CSV cell) counts as absent.
Unknown keys are ignored (a CSV export may carry more columns).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

MAX_RETURN = 100.0                  # +10,000 % on one trade: beyond that it is a unit error, not a trade
MAX_PNL = 1e15
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
ID_MAX = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TRUE, _FALSE = {"true", "1", "yes", "y", "t"}, {"false", "0", "no", "n", "f"}


def _bad(message: str) -> PydanticCustomError:
    return PydanticCustomError("trade_field", message.replace("{", "{{").replace("}", "}}"))


def _show(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _identifier(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _bad(f"must be text, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise _bad("required (empty)")
    if len(text) > ID_MAX:
        raise _bad(f"at most {ID_MAX} characters, got {len(text)}")
    if _CONTROL.search(text):
        raise _bad(f"{_show(text)} contains a control character (NUL, newline, …)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(f"{_show(text)} is not valid Unicode (lone surrogate)") from None
    return text


def _optional_identifier(value: Any) -> str | None:
    return None if _blank(value) else _identifier(value)


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 40 or "\x00" in text:
            raise _bad(f"{_show(value)} is not an ISO-8601 timestamp")
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            raise _bad(f"{_show(value)} is not an ISO-8601 timestamp") from None
    else:
        raise _bad(f"must be an ISO-8601 timestamp, got {type(value).__name__}")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    try:
        plausible = EARLIEST <= ts < LATEST
    except (OverflowError, ValueError):
        plausible = False
    if not plausible:
        raise _bad(f"{ts.isoformat()} is outside {EARLIEST.year}–{LATEST.year - 1}")
    return ts


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(f"must be a number, got {type(value).__name__}")
    if isinstance(value, str) and (len(value) > 64 or not value.strip()):
        raise _bad(f"{_show(value)} is not a number")
    try:
        v = float(value)
    except (ValueError, OverflowError):
        raise _bad(f"{_show(value)} is not a number") from None
    if not math.isfinite(v):
        raise _bad(f"{_show(value)} is not finite")
    return v


def _return(value: Any) -> float:
    v = _number(value)
    if v <= -1.0:
        raise _bad(f"{v} would lose more than everything (must be > -1)")
    if v > MAX_RETURN:
        raise _bad(f"{v} is more than {MAX_RETURN:g} (+{MAX_RETURN:.0%}) on one trade: a fraction is "
                   "expected (0.012 = +1.2 %)")
    return v


def _pnl(value: Any) -> float:
    if _blank(value):
        return 0.0
    v = _number(value)
    if abs(v) > MAX_PNL:
        raise _bad(f"{v:g} is beyond ±{MAX_PNL:g}")
    return v


def _flag(value: Any) -> bool | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
    raise _bad(f"{_show(value)} is not true/false")


class Trade(BaseModel):
    """One closed trade of one model (``return`` is a fraction: 0.012 = +1.2 %)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    trade_id: Annotated[str, BeforeValidator(_identifier), Field(max_length=ID_MAX)]
    opened_at: Annotated[datetime, BeforeValidator(_timestamp)]
    closed_at: Annotated[datetime, BeforeValidator(_timestamp)]
    ret: Annotated[float, BeforeValidator(_return), Field(alias="return")]
    pnl: Annotated[float, BeforeValidator(_pnl)] = 0.0
    shadow: Annotated[bool | None, BeforeValidator(_flag)] = None
    opportunity_id: Annotated[str | None, BeforeValidator(_optional_identifier)] = None

    @field_validator("closed_at")
    @classmethod
    def _closed_after_opened(cls, closed: datetime, info: ValidationInfo) -> datetime:
        opened = info.data.get("opened_at")
        if opened is not None and closed < opened:
            raise _bad(f"{closed.isoformat()} is before opened_at {opened.isoformat()}")
        return closed


class TradeRejected(ValueError):
    """A row that is not a trade: ``field`` is the first field at fault, ``reason`` names every one."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


def parse_trade(row: Any) -> Trade:
    """A ``Trade`` from one input row, or ``TradeRejected`` naming the field(s) at fault."""
    if not isinstance(row, dict):
        raise TradeRejected("row", f"row: a trade must be an object with named fields, got {type(row).__name__}")
    if any(not isinstance(k, str) for k in row):
        raise TradeRejected("row", "row: field names must be text")
    try:
        return Trade.model_validate(row)
    except ValidationError as exc:
        raise rejected(exc) from None


def rejected(exc: ValidationError) -> TradeRejected:
    parts, first = [], None
    for err in exc.errors(include_url=False):
        name = ".".join(str(p) for p in err["loc"]) or "row"
        first = first or name
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "required"
        parts.append(f"{name}: {msg}")
    return TradeRejected(first or "row", "; ".join(parts))
