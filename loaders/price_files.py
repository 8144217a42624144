"""Reading one price file: layout by header, text into numbers, every bar through the bar schema.

Three layouts are recognised by their header, not their path:

- daily (``timestamp,open,high,low,close,adjusted_close,volume,...``): raw OHLC are
  not split-adjusted, so OHLC are scaled by ``adjusted_close / close`` and stored
  with ``adjusted = true``;
- benchmark (``Date,Open,High,Low,Close,Adj Close,Volume``, e.g. GSPC): same scaling,
  symbol from the file name, timeframe ``1d``;
- intraday (``timestamp,open,high,low,close,volume``, ``<SYM>_1min.csv.gz``): stored
  as is, timeframe ``1min``, timestamps taken as UTC.

A file that cannot be read as prices at all (not UTF-8, not CSV, unknown header, a symbol
that is not a ticker) raises ``PriceFileError`` naming the file and the line. Otherwise each
row is judged alone: text that is not a number or a time is refused here; the bar it makes
(after the split adjustment, i.e. what would be stored) is judged by ``shared_models.bars``
— the schema the live path uses — and duplicate or unsorted timestamps by this module.
Refused rows keep their reason, their field and the raw row, for ``dead_letters``.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shared_models.bars import BarError, check_symbol, provably_valid, validate_bar

DAILY_COLUMNS = ["timestamp", "open", "high", "low", "close", "adjusted_close", "volume"]
BENCHMARK_COLUMNS = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
INTRADAY_COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]
BAR_FIELDS = ("open", "high", "low", "close", "volume")


class PriceFileError(ValueError):
    """A file cannot be read as prices at all; the message names the file (and the line)."""


@dataclass
class PriceFrame:
    """One file, parsed: accepted bars (split-adjusted) and rejected rows with reasons."""

    path: Path
    symbol: str
    timeframe: str
    bars: pd.DataFrame  # ts (UTC), open, high, low, close, volume, adjusted
    rejected: pd.DataFrame  # original columns + reason (a category) + field + detail


def symbol_of(path: Path) -> str:
    """The ticker a file holds, from its name (``BRK.B.csv.gz`` -> BRK.B, ``DBB_1min`` -> DBB)."""
    name = path.name
    for suffix in (".csv.gz", ".csv"):
        name = name.removesuffix(suffix)
    name = name.removesuffix("_1min").lstrip("^")
    try:
        return check_symbol(name)
    except BarError as exc:
        raise PriceFileError(f"{path}: the file name gives no ticker ({exc})") from None


def _text(path: Path) -> str:
    """The file as text; not gzip/UTF-8 -> PriceFileError naming the file and the line."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise PriceFileError(f"{path}: cannot read it ({exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise PriceFileError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                             "is it a price CSV?") from None


def _csv(path: Path, text: str) -> pd.DataFrame:
    # A NUL in a cell makes that cell unreadable, not the file: U+FFFD keeps it visibly wrong, so the
    # row is refused naming its field (a NUL in the header still makes the header unknown).
    text = text.replace("\x00", "\ufffd")
    try:
        # a short row's missing cells come back as NaN even with dtype=str: they are empty text
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).fillna("")
    except pd.errors.EmptyDataError:
        raise PriceFileError(f"{path}: line 1: empty file, expected a CSV header") from None
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            raise PriceFileError(f"{path}: line {m[2]}: {m[3]} fields where the header (line 1) has {m[1]}; "
                                 "not a price CSV") from None
        raise PriceFileError(f"{path}: not a price CSV ({str(exc).removeprefix('Error tokenizing data. ')})") \
            from None


def _layout(path: Path, raw: pd.DataFrame) -> tuple[str, str | None, pd.DataFrame]:
    cols = list(raw.columns)
    if set(DAILY_COLUMNS) <= set(cols):
        return "1d", "adjusted_close", raw[DAILY_COLUMNS].rename(columns={"adjusted_close": "adj"})
    if set(BENCHMARK_COLUMNS) <= set(cols):
        return "1d", "Adj Close", raw[BENCHMARK_COLUMNS].rename(columns={
            "Date": "timestamp", "Open": "open", "High": "high", "Low": "low", "Close": "close",
            "Adj Close": "adj", "Volume": "volume"})
    if set(INTRADAY_COLUMNS) <= set(cols):
        return "1min", None, raw[INTRADAY_COLUMNS].copy()
    shown = ",".join(c[:20] for c in cols[:8]) + (",..." if len(cols) > 8 else "")
    raise PriceFileError(f"{path}: line 1: header {shown!r} is neither daily ({','.join(DAILY_COLUMNS)}), "
                         f"benchmark ({','.join(BENCHMARK_COLUMNS)}) nor intraday ({','.join(INTRADAY_COLUMNS)})")


def read_price_file(path: str | Path) -> PriceFrame:
    """Parse, validate and split-adjust one file (pure: no database)."""
    path = Path(path)
    symbol = symbol_of(path)
    raw = _csv(path, _text(path))
    timeframe, adj_col, frame = _layout(path, raw)
    price_cols = ["open", "high", "low", "close"] + (["adj"] if adj_col else [])
    num = frame[price_cols + ["volume"]].apply(pd.to_numeric, errors="coerce")
    ts = pd.to_datetime(frame["timestamp"], errors="coerce", utc=True, format="ISO8601")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # bad rows: judged below
        factor = (num["adj"] / num["close"]).to_numpy() if adj_col else np.ones(len(num))
        cand = {c: num[c].to_numpy() * factor for c in ("open", "high", "low", "close")}
    cand["volume"] = num["volume"].to_numpy()
    ok = provably_valid(ts, cand["open"], cand["high"], cand["low"], cand["close"], cand["volume"], timeframe)
    n = len(frame)
    reason = np.full(n, "", dtype=object)
    fld = np.full(n, "", dtype=object)
    detail = np.full(n, "", dtype=object)
    for i in np.flatnonzero(~ok):
        why = _judge(frame, num, ts, cand, i, timeframe, adj_col)
        if why is None:
            ok[i] = True  # the screen is conservative: the schema accepted the row
        else:
            fld[i], reason[i], detail[i] = why
    _order_checks(ts, ok, reason, fld, detail)
    ok = reason == ""
    bars = pd.DataFrame({"ts": ts[ok].reset_index(drop=True)})  # stays datetime64[ns, UTC]
    for c in BAR_FIELDS:
        bars[c] = cand[c][ok]
    bars["adjusted"] = adj_col is not None
    rejected = raw[~ok].copy()
    rejected["reason"], rejected["field"], rejected["detail"] = reason[~ok], fld[~ok], detail[~ok]
    return PriceFrame(path, symbol, timeframe, bars.reset_index(drop=True), rejected)


def _judge(frame: pd.DataFrame, num: pd.DataFrame, ts: pd.Series, cand: dict, i: int, timeframe: str,
           adj_col: str | None) -> tuple[str, str, str] | None:
    """(field, reason, detail) of row ``i``, or None when the bar schema accepts it."""
    text_row = frame.iloc[i]
    if pd.isna(ts.iloc[i]):
        return "timestamp", _text_kind(text_row["timestamp"], "time"), \
            f"timestamp: {text_row['timestamp'][:40]!r} is not a date/time"
    for c in ("open", "high", "low", "close", "volume") + (("adj",) if adj_col else ()):
        if pd.isna(num[c].iloc[i]) and not _nan_text(text_row[c]):
            name = adj_col if c == "adj" else c
            return name, _text_kind(text_row[c], "number"), f"{name}: {text_row[c][:40]!r} is not a number"
    if adj_col:
        a = num["adj"].iloc[i]
        if not (np.isfinite(a) and a > 0):
            return adj_col, "not a positive number", f"{adj_col}: {a!r} cannot scale a price"
    bar = {"ts": ts.iloc[i].to_pydatetime(), **{c: float(cand[c][i]) for c in BAR_FIELDS}}
    try:
        validate_bar(bar, timeframe)
    except BarError as exc:
        name = "timestamp" if exc.field == "ts" else exc.field
        return name, exc.kind, f"{name}: {exc.reason}"
    return None


def _nan_text(s: str) -> bool:
    return s.strip().lower() in ("nan", "-nan", "+nan")


def _text_kind(s: str, what: str) -> str:
    return "missing" if not s.strip() else f"not a {what}"


def _order_checks(ts: pd.Series, ok: np.ndarray, reason: np.ndarray, fld: np.ndarray,
                  detail: np.ndarray) -> None:
    """Duplicate and unsorted timestamps among the rows still accepted (first one wins)."""
    t = pd.DatetimeIndex(ts).asi8  # int64 ns; on int arrays, not object Timestamps

    def mark(mask: np.ndarray, why: str) -> None:
        hit = mask & (reason == "")
        reason[hit], fld[hit] = why, "timestamp"
        detail[hit] = f"timestamp: {why}"

    valid = ok & (reason == "")
    dup = np.zeros(len(t), bool)
    dup[np.flatnonzero(valid)] = pd.Series(t[valid]).duplicated(keep="first").to_numpy()
    mark(dup, "duplicate timestamp")
    valid = ok & (reason == "")
    latest = np.maximum.accumulate(np.where(valid, t, np.iinfo(np.int64).min))  # newest accepted so far
    before = np.concatenate([[np.iinfo(np.int64).min], latest[:-1]])
    mark(valid & (t < before), "unsorted timestamp")
