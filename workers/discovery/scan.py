"""Scans: read a politician's trades and prices, run every analysis, upsert the findings.

``scan_politician`` is the unit of one Celery task (one transaction);
``scan_network`` is the cross-member work (network + experiments): a header task of
``tasks.scan_chord``, or a recorded run's last step.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, exists, select, text
from sqlalchemy.orm import Session

from shared_models.models.core import TableVersion
from shared_models.models.discovery import Politician, Trade
from shared_models.models.patterns import PatternBarVersion
from shared_models.settings import DiscoverySettings

from . import anomalies, cycles, event_study, habits, store  # network, experiment: in scan_network (networkx)
from .findings import DIRECTION, TRADE_FRAME_COLUMNS

BENCHMARK = "GSPC"
PRICE_LOOKBACK_DAYS = 380  # > 250 trading days of estimation window
PRICE_LOOKAHEAD_DAYS = 100  # > 60 trading days of event window


class UnknownPolitician(LookupError):
    pass


@dataclass(frozen=True)
class ScanSummary:
    politician_id: str
    trades: int
    patterns: int
    anomalies: int
    written: int
    events_studied: int

    def as_dict(self) -> dict:
        return self.__dict__.copy()


_TRADES_SQL = (f"SELECT {', '.join(TRADE_FRAME_COLUMNS)} FROM trades WHERE politician_id = %s "
               "ORDER BY transaction_date, id")


def load_trades(session: Session, politician_id: str) -> pd.DataFrame:
    """The politician's trades as a frame (``trade_frame``: the same columns, dtypes and order, dates by
    numpy): plain DB-API tuples already in ``trade_frame``'s order (transaction date, then id: both never
    NULL, ids unique, so the order is total), columns built from lists, no pandas sort."""
    cur = session.connection().connection.dbapi_connection.cursor()
    try:
        cur.execute(_TRADES_SQL, (str(politician_id),))
        rows = cur.fetchall()
    finally:
        cur.close()
    df = pd.DataFrame.from_records(rows, columns=TRADE_FRAME_COLUMNS)
    for col in ("transaction_date", "disclosure_date"):
        df[col] = np.array(df[col].tolist(), dtype="datetime64[D]").astype("datetime64[ns]")
    return df


_CLOSES_SQL = {
    # one index range scan per symbol window, rows in index order: no sort of the whole result (half the
    # server time of a join + ORDER BY); SQL does not promise the outer order, so it is checked below.
    # Each row is the window's number (w.n, windows in symbol order), the epoch day and the close: three
    # fixed-width fields, sent as binary COPY and read by numpy in one call (no text parsing either side)
    "lateral": """
        SELECT w.n::int4, (extract(epoch FROM b.ts)::bigint / 86400)::int4, b.close
        FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY AS w(symbol, s, e, n)
        CROSS JOIN LATERAL (SELECT ts, close FROM market_bars b WHERE b.symbol = w.symbol AND b.timeframe = '1d'
                            AND b.ts BETWEEN w.s AND w.e ORDER BY b.ts) b""",
    "sorted": """
        SELECT w.n::int4, (extract(epoch FROM b.ts)::bigint / 86400)::int4, b.close FROM market_bars b
        JOIN unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY AS w(symbol, s, e, n)
          ON b.symbol = w.symbol AND b.ts BETWEEN w.s AND w.e
        WHERE b.timeframe = '1d' ORDER BY w.n, b.ts""",
}

# binary COPY: a 19-byte header, then per row int16 field count and (int32 length, value) per field, big-endian;
# a trailer of int16 -1. Rows of (int4, int4, float8) are 30 bytes each, so the body is one structured array.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00"
_CLOSE_ROW = np.dtype([("fields", ">i2"), ("l_n", ">i4"), ("n", ">i4"), ("l_day", ">i4"), ("day", ">i4"),
                       ("l_close", ">i4"), ("close", ">f8")])


def _copy_closes(cur, sql: str, params: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(window numbers, epoch days, closes) of the query's rows, as int64/int64/float64 arrays."""
    buf = io.BytesIO()
    cur.copy_expert(f"COPY ({cur.mogrify(sql, params).decode()}) TO STDOUT WITH (FORMAT binary)", buf)
    data = buf.getbuffer()
    ext = int.from_bytes(data[15:19], "big")
    body = data[19 + ext:len(data) - 2]
    if (bytes(data[:11]) != _COPY_HEADER or bytes(data[len(data) - 2:]) != b"\xff\xff"
            or len(body) % _CLOSE_ROW.itemsize):
        raise ValueError("load_closes: unexpected binary COPY layout")
    rows = np.frombuffer(body, dtype=_CLOSE_ROW)
    if len(rows) and ((rows["fields"] != 3).any() or (rows["l_n"] != 4).any() or (rows["l_day"] != 4).any()
                      or (rows["l_close"] != 8).any()):
        raise ValueError("load_closes: unexpected binary COPY row (a NULL?)")
    return rows["n"].astype(np.int64), rows["day"].astype(np.int64), rows["close"].astype(np.float64)


def load_closes(session: Session, windows: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Adjusted daily closes per symbol as (epoch days, close) arrays, only within each symbol's
    [start, end] window (``windows``: one row per symbol, symbols sorted, as ``_windows`` gives).
    Streams through binary COPY (read by numpy in one call) instead of row objects."""
    if windows.empty:
        return {}
    dbapi = session.connection().connection.dbapi_connection
    cur = dbapi.cursor()
    symbols = windows["symbol"].tolist()
    params = (symbols, [t.to_pydatetime() for t in windows["start"]], [t.to_pydatetime() for t in windows["end"]])
    try:
        n, days, close = _copy_closes(cur, _CLOSES_SQL["lateral"], params)
        cuts = np.flatnonzero(n[1:] != n[:-1]) + 1
        # each window in one run, runs in window order, days ascending in a run: what ORDER BY w.n, ts gives
        step = np.diff(days)
        step[cuts - 1] = 0
        if (np.diff(n) < 0).any() or (step < 0).any():
            n, days, close = _copy_closes(cur, _CLOSES_SQL["sorted"], params)  # the planner chose another order
    finally:
        cur.close()
    if not len(n):
        return {}
    cuts = np.flatnonzero(n[1:] != n[:-1]) + 1
    starts, ends = np.r_[0, cuts], np.r_[cuts, len(n)]
    return {str(symbols[n[a] - 1]): (days[a:b], close[a:b]) for a, b in zip(starts, ends)}


_MARKET_CACHE: dict = {}


# The caches' stamps: primary-key lookups of versions kept by statement triggers, each changed by
# every change of its rows (not count(*) of trades: a sequential scan of the table per politician).
# trades: table_versions (migration 0017). The benchmark's daily bars: pattern_bar_versions
# (migration 0003): appends move max_ts, any other change bumps version, so (version, max_ts) is
# exact where count(*), max(ts) missed a corrected close.
_SHARES_STAMP = (select(TableVersion.version).where(TableVersion.table_name == Trade.__tablename__)
                 .scalar_subquery(),)
_BENCHMARK_BARS = (PatternBarVersion.symbol == BENCHMARK, PatternBarVersion.timeframe == "1d")
_MARKET_STAMP = tuple(select(c).where(*_BENCHMARK_BARS).scalar_subquery()
                      for c in (PatternBarVersion.version, PatternBarVersion.max_ts))
# scan_stamps: the politician exists, and both stamps
_SCAN_START = select(exists().where(Politician.id == bindparam("p")), *_SHARES_STAMP, *_MARKET_STAMP)


def load_market(session: Session, stamp: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's closes, cached per process while its bars' version is unchanged
    (``stamp``: that version, when the caller read it already)."""
    if stamp is None:
        stamp = tuple(session.execute(select(*_MARKET_STAMP)).one())
    if stamp[0] is None or _MARKET_CACHE.get("stamp") != stamp:  # no version row (deleted by hand): no cache
        closes = load_closes(session, pd.DataFrame({"symbol": [BENCHMARK],
                                                    "start": [pd.Timestamp("1900-01-01", tz="UTC")],
                                                    "end": [pd.Timestamp("2200-01-01", tz="UTC")]}))
        _MARKET_CACHE.update(stamp=stamp, prices=closes.get(BENCHMARK, (np.empty(0, np.int64), np.empty(0))))
    return _MARKET_CACHE["prices"]


def as_series(prices: tuple[np.ndarray, np.ndarray]) -> pd.Series:
    return pd.Series(prices[1], index=pd.to_datetime(prices[0].astype("datetime64[D]")))


_SHARES_CACHE: dict = {}


def congress_ticker_shares(session: Session, stamp: tuple | None = None) -> dict[str, float]:
    """Each ticker's share of all disclosed trades; cached per process while trades are unchanged
    (``stamp``: their version, when the caller read it already)."""
    if stamp is None:
        stamp = tuple(session.execute(select(*_SHARES_STAMP)).one())
    if stamp[0] is None or _SHARES_CACHE.get("stamp") != stamp:
        rows = session.execute(text("SELECT ticker, count(*) FROM trades WHERE ticker IS NOT NULL "
                                    "GROUP BY ticker")).all()
        total = sum(c for _, c in rows) or 1
        _SHARES_CACHE.update(stamp=stamp, shares={t: c / total for t, c in rows})
    return _SHARES_CACHE["shares"]


def _windows(dates: pd.DataFrame, col: str, before: int, after: int) -> pd.DataFrame:
    """Each ticker's [first date - before, last date + after] (UTC), tickers sorted: a groupby's
    min/max done on int64 nanoseconds (np.minimum/maximum.at), without a pandas groupby per call."""
    ticker, day = dates["ticker"].to_numpy(), dates[col].to_numpy("datetime64[ns]")
    keep = ~(pd.isna(ticker) | np.isnat(day))
    symbols, which = np.unique(ticker[keep].astype(object), return_inverse=True)
    ns = day[keep].view(np.int64)
    lo, hi = np.full(len(symbols), np.iinfo(np.int64).max), np.full(len(symbols), np.iinfo(np.int64).min)
    np.minimum.at(lo, which, ns)
    np.maximum.at(hi, which, ns)

    def utc(x: np.ndarray, shift_days: int) -> pd.Series:
        # the same values as DatetimeIndex(x) + Timedelta(days=shift_days), localized to UTC, on int64 nanoseconds
        return pd.Series(pd.DatetimeIndex((x + shift_days * 86_400_000_000_000).view("datetime64[ns]")).tz_localize("UTC"))

    return pd.DataFrame({"symbol": pd.Series(symbols, dtype=object), "start": utc(lo, -before), "end": utc(hi, after)})


def scan_stamps(session: Session, politician_id: str) -> tuple[tuple, tuple]:
    """The stamps of the shares and market caches, read with the check that the politician exists
    (one round trip)."""
    known, *stamps = session.execute(_SCAN_START, {"p": politician_id}).one()
    if not known:
        raise UnknownPolitician(f"politician_id: no politician with id {politician_id}")
    return tuple(stamps[:len(_SHARES_STAMP)]), tuple(stamps[len(_SHARES_STAMP):])


def scan_politician(session: Session, politician_id: str, settings: DiscoverySettings) -> ScanSummary:
    """Every per-person analysis for one politician (id: a UUID string), upserted in the caller's transaction."""
    shares_stamp, market_stamp = scan_stamps(session, politician_id)
    trades = load_trades(session, politician_id)
    patterns, found = [], []
    summary = {"events_studied": 0}
    if not trades.empty:
        ids = trades["id"].tolist()
        patterns = [f for f in (cycles.fourier_cycle(trades["transaction_date"], ids,
                                                     fap_threshold=settings.cycle_fap),
                                habits.ticker_concentration(trades, congress_ticker_shares(session, shares_stamp)),
                                habits.weekday_habit(trades)) if f is not None]
        found = anomalies.late_disclosures(trades, deadline_days=settings.late_disclosure_days)
        found += anomalies.unusual_sizes(trades)
        closes = load_closes(session, _windows(trades, "transaction_date", PRICE_LOOKBACK_DAYS,
                                               PRICE_LOOKAHEAD_DAYS))
        market = load_market(session, market_stamp)
        if closes and len(market[0]):
            events, summary = event_study.abnormal_returns(trades, closes, market, alpha=settings.event_alpha)
            found += events
    written = store.save_patterns(session, politician_id, patterns) + store.save_anomalies(session, politician_id,
                                                                                            found)
    store.alert_critical(session, politician_id, settings.critical_severity)
    return ScanSummary(politician_id, len(trades), len(patterns), len(found), written, summary["events_studied"])


def load_all_trades(session: Session) -> pd.DataFrame:
    """Every ticker trade. ``politician_id`` is a member number, 1.. in the politicians' natural-key
    order (see network.py); ``member_id`` / ``member_name`` say who it is. One statement, so the
    numbering and the trades come from one snapshot."""
    rows = session.execute(text("""
        SELECT p.member, p.id::text, p.full_name, t.ticker, t.type, t.asset_type, t.transaction_date,
               t.disclosure_date, p.chamber
        FROM trades t
        JOIN (SELECT id, full_name, chamber, row_number() OVER (ORDER BY key) AS member FROM politicians) p
          ON p.id = t.politician_id
        WHERE t.ticker IS NOT NULL ORDER BY t.id""")).all()
    df = pd.DataFrame(rows, columns=["politician_id", "member_id", "member_name", "ticker", "type", "asset_type",
                                     "transaction_date", "disclosure_date", "chamber"])
    df["direction"] = df["type"].map(DIRECTION).fillna(0).astype(int)
    for col in ("transaction_date", "disclosure_date"):
        df[col] = pd.to_datetime(df[col])
    return df


def scan_network(session: Session, settings: DiscoverySettings) -> dict:
    """Cross-member work: the co-trading network and the copy-trading experiments."""
    from . import experiment, network  # networkx: imported by the one process running this step

    trades = load_all_trades(session)
    members = trades.drop_duplicates("politician_id")
    numbers = members["politician_id"].tolist()
    ids, names = dict(zip(numbers, members["member_id"])), dict(zip(numbers, members["member_name"]))
    net = network.co_trading(trades, window_days=settings.network_window_days, n_shuffles=settings.network_shuffles,
                             names=names, ids=ids)
    purchases = trades[(trades["type"] == "purchase") & trades["disclosure_date"].notna()
                       & (trades["asset_type"].isna() | (trades["asset_type"] == "Stock"))]
    closes = load_closes(session, _windows(purchases, "disclosure_date", 10, 400))
    market = as_series(load_market(session))
    results = []
    if closes and not market.empty:
        calendar = market.index.values.astype("datetime64[D]").astype(np.int64)
        panel = experiment.returns_panel(closes, calendar, purchases["ticker"])
        for label, part in (("all congressional", purchases), ("Senate", purchases[purchases["chamber"] == "senate"]),
                            ("House", purchases[purchases["chamber"] == "house"])):
            res = experiment.copy_purchases(part, closes, market, label=label, hold_days=settings.copy_hold_days,
                                            panel=panel)
            if res is not None:
                results.append(res)
    written = store.save_network(session, net) + store.save_experiments(session, results)
    return {"network_findings": len(net), "experiments": len(results), "written": written}
