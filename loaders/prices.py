"""Price loader: the repository's CSV bars into ``market_bars`` (shared by patterns and discovery).

Three layouts are recognised by their header, not their path:

- daily (``timestamp,open,high,low,close,adjusted_close,volume,...``): raw OHLC are
  not split-adjusted, so OHLC are scaled by ``adjusted_close / close`` and stored
  with ``adjusted = true``;
- benchmark (``Date,Open,High,Low,Close,Adj Close,Volume``, e.g. GSPC): same scaling,
  symbol from the file name, timeframe ``1d``;
- intraday (``timestamp,open,high,low,close,volume``, ``<SYM>_1min.csv.gz``): stored
  as is, timeframe ``1min``, timestamps taken as UTC.

Bad bars (NaN, non-positive price, high < low, negative volume, duplicate or
unsorted timestamps) are rejected, counted per reason and kept in ``dead_letters``
so nothing is silently dropped. Each file is one transaction: COPY into a temp
table, then ``INSERT .. ON CONFLICT DO UPDATE`` — loading twice changes nothing.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

DAILY_COLUMNS = ["timestamp", "open", "high", "low", "close", "adjusted_close", "volume"]
BENCHMARK_COLUMNS = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
INTRADAY_COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]
DEAD_LETTER_SOURCE = "load-prices"
MAX_DEAD_LETTERS_PER_FILE = 10_000  # beyond this the file is broken; the counts still say so


class PriceFileError(ValueError):
    """A file cannot be read as prices at all (unknown layout, missing column)."""


@dataclass
class PriceFrame:
    """One file, parsed: accepted bars (split-adjusted) and rejected rows with reasons."""

    path: Path
    symbol: str
    timeframe: str
    bars: pd.DataFrame  # ts (UTC), open, high, low, close, volume, adjusted
    rejected: pd.DataFrame  # original columns + reason + field


@dataclass
class FileReport:
    path: str
    symbol: str
    timeframe: str
    rows: int
    loaded: int
    rejected: dict[str, int]


@dataclass
class LoadReport:
    """What ``load_prices`` did; ``rejected`` maps reason -> count over all files."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def rejected(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.rejected)
        return dict(total)

    @property
    def symbols(self) -> list[str]:
        return sorted({f.symbol for f in self.files})


def discover_price_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories (recursively) into their ``*.csv`` / ``*.csv.gz`` files, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.name.endswith((".csv", ".csv.gz"))))
        elif p.exists():
            out.append(p)
        else:
            raise PriceFileError(f"path: {p} does not exist")
    return out


def _symbol_of(path: Path) -> str:
    name = path.name.split(".", 1)[0]
    name = name.removesuffix("_1min").lstrip("^")
    return name.upper()


def _reject_reasons(ts: pd.Series, frame: pd.DataFrame, price_cols: Sequence[str]) -> tuple[pd.Series, pd.Series]:
    """(reason, field) per row; empty string = accepted. First failing check wins."""
    n = len(frame)
    reason = np.full(n, "", dtype=object)
    fld = np.full(n, "", dtype=object)

    def mark(mask: np.ndarray, why: str, column: str) -> None:
        hit = mask & (reason == "")
        reason[hit] = why
        fld[hit] = column

    mark(ts.isna().to_numpy(), "unparseable timestamp", "timestamp")
    for c in [*price_cols, "volume"]:
        mark(frame[c].isna().to_numpy(), "missing or non-numeric value", c)
    for c in price_cols:
        mark((frame[c] <= 0).to_numpy(), "non-positive price", c)
    mark((frame["high"] < frame["low"]).to_numpy(), "high < low", "high")
    mark((frame["volume"] < 0).to_numpy(), "negative volume", "volume")
    valid_ts = ts.where(reason == "")
    mark(valid_ts.duplicated(keep="first").to_numpy() & valid_ts.notna().to_numpy(),
         "duplicate timestamp", "timestamp")
    prev_max = valid_ts.where(reason == "").cummax().shift(1)
    mark((valid_ts < prev_max).to_numpy(), "unsorted timestamp", "timestamp")
    return pd.Series(reason, index=frame.index), pd.Series(fld, index=frame.index)


def read_price_file(path: str | Path) -> PriceFrame:
    """Parse, validate and split-adjust one file (pure: no database)."""
    path = Path(path)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    cols = list(raw.columns)
    symbol = _symbol_of(path)
    if set(DAILY_COLUMNS) <= set(cols):
        timeframe, adj_col = "1d", "adjusted_close"
        frame = raw[DAILY_COLUMNS].rename(columns={"adjusted_close": "adj"})
    elif set(BENCHMARK_COLUMNS) <= set(cols):
        timeframe, adj_col = "1d", "Adj Close"
        frame = raw[BENCHMARK_COLUMNS].rename(columns={
            "Date": "timestamp", "Open": "open", "High": "high", "Low": "low", "Close": "close",
            "Adj Close": "adj", "Volume": "volume"})
    elif set(INTRADAY_COLUMNS) <= set(cols):
        timeframe, adj_col = "1min", None
        frame = raw[INTRADAY_COLUMNS].copy()
    else:
        raise PriceFileError(f"{path}: header {cols} is neither daily, benchmark nor intraday prices")
    price_cols = ["open", "high", "low", "close"] + (["adj"] if adj_col else [])
    num = frame[price_cols + ["volume"]].apply(pd.to_numeric, errors="coerce")
    ts = pd.to_datetime(frame["timestamp"], errors="coerce", utc=True, format="ISO8601")
    reason, fld = _reject_reasons(ts, num, price_cols)
    if adj_col:
        fld = fld.replace("adj", adj_col)
    ok = (reason == "").to_numpy()
    good = num[ok]
    bars = pd.DataFrame({"ts": ts[ok].to_numpy()})
    if adj_col:
        factor = (good["adj"] / good["close"]).to_numpy()
        for c in ("open", "high", "low", "close"):
            bars[c] = good[c].to_numpy() * factor
    else:
        for c in ("open", "high", "low", "close"):
            bars[c] = good[c].to_numpy()
    bars["volume"] = good["volume"].to_numpy()
    bars["adjusted"] = adj_col is not None
    rejected = raw[~ok].copy()
    rejected["reason"], rejected["field"] = reason[~ok], fld[~ok]
    return PriceFrame(path, symbol, timeframe, bars, rejected)


_UPSERT = """
INSERT INTO market_bars (symbol, timeframe, ts, open, high, low, close, volume, adjusted)
SELECT symbol, timeframe, ts, open, high, low, close, volume, adjusted FROM _qp_bars_in
ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume, adjusted = EXCLUDED.adjusted
WHERE (market_bars.open, market_bars.high, market_bars.low, market_bars.close, market_bars.volume,
       market_bars.adjusted)
   IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume,
                     EXCLUDED.adjusted)
"""


def _copy_buffer(pf: PriceFrame) -> io.StringIO:
    b = pf.bars
    out = pd.DataFrame({
        "symbol": pf.symbol, "timeframe": pf.timeframe,
        "ts": b["ts"].dt.strftime("%Y-%m-%d %H:%M:%S+00"),
        "open": b["open"], "high": b["high"], "low": b["low"], "close": b["close"],
        "volume": b["volume"], "adjusted": np.where(b["adjusted"], "t", "f")})
    buf = io.StringIO()
    out.to_csv(buf, index=False, header=False, float_format="%.17g")  # exact round trip of float64
    buf.seek(0)
    return buf


def write_price_frame(conn, pf: PriceFrame) -> int:
    """Upsert one parsed file inside the caller's transaction (a DBAPI connection); return rows written."""
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS _qp_bars_in (LIKE market_bars INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS")
    cur.execute("TRUNCATE _qp_bars_in")
    cur.copy_expert("COPY _qp_bars_in (symbol, timeframe, ts, open, high, low, close, volume, adjusted) "
                    "FROM STDIN WITH (FORMAT csv)", _copy_buffer(pf))
    cur.execute(_UPSERT)
    written = cur.rowcount
    source = f"{DEAD_LETTER_SOURCE}:{pf.path.name}"
    # Re-loading replaces this file's dead letters instead of piling up copies.
    cur.execute("DELETE FROM dead_letters WHERE pool = 'patterns' AND source = %s", (source,))
    rows = [("patterns", source, r.pop("field"), r.pop("reason"), json.dumps(r))
            for r in pf.rejected.head(MAX_DEAD_LETTERS_PER_FILE).to_dict("records")]
    if rows:
        cur.executemany("INSERT INTO dead_letters (pool, source, field, reason, payload) "
                        "VALUES (%s, %s, %s, %s, %s::jsonb)", rows)
    cur.close()
    return written


def load_prices(engine: Engine, paths: Iterable[str | Path],
                progress: Callable[[FileReport], None] | None = None) -> LoadReport:
    """Load price files or directories into ``market_bars``; one transaction per file; idempotent.

    ``progress`` is called after each file with its ``FileReport``. Raises ``PriceFileError``
    (naming the file) for a file whose layout is unknown, before anything is written.
    """
    files = discover_price_files(paths)
    report = LoadReport()
    for path in files:
        pf = read_price_file(path)
        raw = engine.raw_connection()
        try:
            write_price_frame(raw, pf)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()
        fr = FileReport(str(path), pf.symbol, pf.timeframe, len(pf.bars) + len(pf.rejected), len(pf.bars),
                        dict(Counter(pf.rejected["reason"])))
        report.files.append(fr)
        if progress is not None:
            progress(fr)
    return report


def read_bars(engine: Engine, symbols: Sequence[str] | None = None, timeframe: str = "1d",
              start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
    """Stored bars as a frame (symbol, ts, open, high, low, close, volume), sorted by symbol, ts."""
    clauses, params = ["timeframe = :tf"], {"tf": timeframe}
    if symbols:
        clauses.append("symbol = ANY(:symbols)")
        params["symbols"] = list(symbols)
    if start is not None:
        clauses.append("ts >= :start")
        params["start"] = start
    if end is not None:
        clauses.append("ts <= :end")
        params["end"] = end
    sql = ("SELECT symbol, ts, open, high, low, close, volume FROM market_bars WHERE "
           + " AND ".join(clauses) + " ORDER BY symbol, ts")
    with engine.connect() as conn:
        return pd.read_sql(text(sql), conn, params=params)
