"""Price loader: the repository's CSV bars into ``market_bars`` (shared by patterns and discovery).

Reading and validating a file is ``loaders.price_files`` (layouts, the bar schema of
``shared_models.bars``); this module writes. Each file is one transaction: COPY into a temp
table, then ``INSERT .. ON CONFLICT DO UPDATE .. WHERE IS DISTINCT FROM`` — loading twice
changes nothing, and a value that does change is recorded in ``market_bar_corrections`` (old
and new values, by the trigger of migration 0009) with this file as its source. Refused rows
are counted per reason and kept in ``dead_letters``; a file that cannot be read at all is
reported (and dead-lettered) and the other files still load.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from shared_models import dead_letters

from .price_files import (BENCHMARK_COLUMNS, DAILY_COLUMNS, INTRADAY_COLUMNS, PriceFileError,  # noqa: F401
                          PriceFrame, read_price_file, symbol_of)

DEAD_LETTER_SOURCE = "load-prices"
MAX_DEAD_LETTERS_PER_FILE = 10_000  # beyond this the file is broken; the counts still say so


@dataclass
class FileReport:
    path: str
    symbol: str
    timeframe: str
    rows: int
    loaded: int
    rejected: dict[str, int]  # "field: reason" -> rows


@dataclass
class FileFailure:
    """A file that could not be read as prices at all (nothing of it was written)."""

    path: str
    error: str


@dataclass
class LoadReport:
    """What ``load_prices`` did; ``rejected`` maps "field: reason" -> count over all files."""

    files: list[FileReport] = field(default_factory=list)
    failed: list[FileFailure] = field(default_factory=list)

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


_COLUMNS = ("symbol", "timeframe", "ts", "open", "high", "low", "close", "volume", "adjusted")
_VALUES = ("open", "high", "low", "close", "volume", "adjusted")


def _upsert_sql() -> str:
    """INSERT .. SELECT from the COPY temp table, from the model, compiled once: a reload writes
    nothing that is unchanged (no correction row, no cache-version bump)."""
    from sqlalchemy import column, select, table, tuple_
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.dialects.postgresql import insert

    from shared_models.models import MarketBar

    b = MarketBar.__table__
    staged = table("_qp_bars_in", *(column(c) for c in _COLUMNS))
    st = insert(b).from_select(list(_COLUMNS), select(*(staged.c[c] for c in _COLUMNS)))
    st = st.on_conflict_do_update(
        index_elements=[b.c.symbol, b.c.timeframe, b.c.ts], set_={c: st.excluded[c] for c in _VALUES},
        where=tuple_(*(b.c[c] for c in _VALUES)).is_distinct_from(tuple_(*(st.excluded[c] for c in _VALUES))))
    return str(st.compile(dialect=postgresql.psycopg2.dialect()))


_UPSERT = _upsert_sql()


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
    source = f"{DEAD_LETTER_SOURCE}:{pf.path.name}"
    cur = conn.cursor()
    cur.execute("SELECT set_config('quantpipe.bar_source', %s, true)", (source,))  # names the corrections
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS _qp_bars_in (LIKE market_bars INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS")
    cur.execute("TRUNCATE _qp_bars_in")
    cur.copy_expert("COPY _qp_bars_in (symbol, timeframe, ts, open, high, low, close, volume, adjusted) "
                    "FROM STDIN WITH (FORMAT csv)", _copy_buffer(pf))
    cur.execute(_UPSERT)
    written = cur.rowcount
    # Re-loading replaces this file's dead letters instead of piling up copies.
    _forget(cur, source)
    letters = []
    for r in pf.rejected.head(MAX_DEAD_LETTERS_PER_FILE).to_dict("records"):
        fld, detail = r.pop("field"), r.pop("detail")
        r.pop("reason")
        letters.append((fld, detail, r))
    _keep(cur, source, letters)
    cur.close()
    return written


def _forget(cur, source: str) -> None:
    dead_letters.forget_sources(cur, "patterns", [source])


def _keep(cur, source: str, letters: list[tuple[str, str, dict]]) -> None:
    """Dead letters (field, reason, payload) of this file, in the caller's transaction."""
    dead_letters.keep_many(cur, "patterns", [dead_letters.Letter(source, why, p, f) for f, why, p in letters])


def _failed_file(engine: Engine, path: Path, error: str) -> None:
    """Keep a file that could not be read (its path, the error and its first bytes)."""
    try:
        head = path.read_bytes()[:2000].decode("utf-8", "backslashreplace")
    except OSError:
        head = ""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        source = f"{DEAD_LETTER_SOURCE}:{path.name}"
        _forget(cur, source)
        _keep(cur, source, [("file", error, {"path": str(path), "head": head})])
        raw.commit()
    finally:
        raw.close()


def load_prices(engine: Engine, paths: Iterable[str | Path],
                progress: Callable[[FileReport], None] | None = None) -> LoadReport:
    """Load price files or directories into ``market_bars``; one transaction per file; idempotent.

    ``progress`` is called after each file with its ``FileReport`` (or ``FileFailure``). A file
    that cannot be read as prices (``PriceFileError``: not UTF-8, not CSV, unknown header) is
    dead-lettered and listed in ``report.failed``; the other files still load. A path that does
    not exist raises ``PriceFileError`` before anything is written.
    """
    files = discover_price_files(paths)
    report = LoadReport()
    for path in files:
        try:
            pf = read_price_file(path)
        except PriceFileError as exc:
            _failed_file(engine, path, str(exc))
            report.failed.append(FileFailure(str(path), str(exc)))
            if progress is not None:
                progress(report.failed[-1])
            continue
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
                        dict(Counter(pf.rejected["field"] + ": " + pf.rejected["reason"])))
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
