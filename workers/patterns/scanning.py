"""Scans over stored bars and the live bar path: read bars, detect, persist, relay (no Celery here).

One symbol and tier is one unit of work: its detections, outbox rows, checkpoints
and the scan watermark commit together, so a killed scan is simply redone and,
thanks to the idempotency key, adds nothing the first run already added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from shared_models import dead_letters
from shared_models.bars import BarError, check_symbol, check_timeframe, validate_bar

from . import live_path
from .detection import TIMEFRAME_OF_TIER, Detection, combine, detect_frame
from .publisher import Persisted, persist_detections, relay_outbox
from .window_cache import WindowCache, process_cache

HISTORY_BARS = 260  # lookback kept before ``since``: enough for SMA200 and every candle rule


@dataclass
class ScanResult:
    symbol: str
    tier: str
    bars: int
    detected: int
    new: int
    published: int
    relay_error: str | None = None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def read_symbol_bars(conn, symbol: str, timeframe: str, since: datetime | None) -> pd.DataFrame:
    """Bars of one symbol, oldest first; with ``since``, only HISTORY_BARS before it plus what follows."""
    params: dict = {"s": symbol, "tf": timeframe}
    floor = ""
    if since is not None:
        floor = ("AND ts >= COALESCE((SELECT ts FROM market_bars WHERE symbol = :s AND timeframe = :tf "
                 "AND ts <= :since ORDER BY ts DESC OFFSET :hist LIMIT 1), '-infinity')")
        params.update(since=since, hist=HISTORY_BARS)
    sql = (f"SELECT ts, open, high, low, close, volume FROM market_bars WHERE symbol = :s AND timeframe = :tf "
           f"{floor} ORDER BY ts")
    return pd.read_sql(text(sql), conn, params=params)


def _watermark(session: Session, symbol: str, tier: str) -> datetime | None:
    return session.execute(text("SELECT last_bar_ts FROM pattern_scan_state WHERE symbol = :s AND tier = :t"),
                           {"s": symbol, "t": tier}).scalar()


def _set_watermark(session: Session, symbol: str, tier: str, ts: datetime) -> None:
    session.execute(text(
        "INSERT INTO pattern_scan_state (symbol, tier, last_bar_ts, updated_at) VALUES (:s, :t, :ts, now()) "
        "ON CONFLICT (symbol, tier) DO UPDATE SET last_bar_ts = GREATEST(pattern_scan_state.last_bar_ts, "
        "EXCLUDED.last_bar_ts), updated_at = now()"), {"s": symbol, "t": tier, "ts": ts})


def detect_in_session(session: Session, symbol: str, tier: str, since: datetime | None,
                      incremental: bool, first_scan_bars: int = 5) -> tuple[int, list[Detection]]:
    """(bars read, detections) for one symbol and tier, reading inside ``session``.

    Incremental (the beat scan): from the watermark; a symbol never scanned before starts
    ``first_scan_bars`` bars from its end, so a first beat does not publish years of history
    (``quantpipe patterns scan --full`` does that on purpose).
    """
    if incremental and since is None:
        since = _watermark(session, symbol, tier)
        if since is None and tier != "combo":
            since = session.execute(text(
                "SELECT ts FROM market_bars WHERE symbol = :s AND timeframe = :tf ORDER BY ts DESC "
                "OFFSET :n LIMIT 1"), {"s": symbol, "tf": TIMEFRAME_OF_TIER[tier], "n": first_scan_bars}).scalar()
    if tier == "combo":
        daily = _stored(session, symbol, "daily", since)
        intraday = _stored(session, symbol, "intraday", since)
        if daily:
            _set_watermark(session, symbol, tier, max(d.bar_ts for d in daily))
        return 0, combine(daily, intraday)
    frame = read_symbol_bars(session.connection(), symbol, TIMEFRAME_OF_TIER[tier], since)
    if not frame.empty:
        _set_watermark(session, symbol, tier, frame["ts"].iloc[-1].to_pydatetime())
    return len(frame), detect_frame(symbol, frame, tier, since)


def _stored(session: Session, symbol: str, tier: str, since: datetime | None) -> list[Detection]:
    rows = session.execute(text(
        "SELECT pattern, bar_ts, confidence, current_price, price_change, volume, indicators "
        "FROM pattern_detections WHERE symbol = :s AND tier = :t AND (CAST(:since AS timestamptz) IS NULL "
        "OR bar_ts > CAST(:since AS timestamptz) - interval '1 day') ORDER BY bar_ts"),
        {"s": symbol, "t": tier, "since": since}).all()
    return [Detection(symbol, p, tier, ts, c, price, chg, vol, int((ind or {}).get("direction", 0)), ind or {})
            for p, ts, c, price, chg, vol, ind in rows]


def scan_symbol(engine: Engine, redis_client, symbol: str, tier: str = "daily", since: datetime | None = None,
                incremental: bool = True, ttl_hours: float = 24.0, first_scan_bars: int = 5) -> ScanResult:
    """Detect, persist (one transaction) and publish one symbol's patterns."""
    events: dict = {}
    with Session(engine) as session, session.begin():
        n_bars, found = detect_in_session(session, symbol, tier, since, incremental, first_scan_bars)
        new = persist_detections(session, found, ttl_hours, events=events)
    return _publish(engine, redis_client, ScanResult(symbol, tier, n_bars, len(found), len(new), 0), new, [symbol],
                    events)


def _tier_of(timeframe) -> str:
    return {"1d": "daily", "1min": "intraday"}[check_timeframe(timeframe)]


MAX_BARS_PER_CALL = 10_000  # a universe tick is ~500; more is a client bug, refused as a whole


def ingest_bar(engine: Engine, redis_client, symbol, timeframe, bar, ttl_hours: float = 24.0,
               cache: WindowCache | None = None) -> ScanResult:
    """The live path: store one new bar and publish the patterns it completes.

    ``bar``: {"ts": epoch seconds or ISO string, "open", "high", "low", "close", "volume"}, judged
    by ``shared_models.bars`` (JSON numbers must be numbers). Raises ``BarError`` naming the field
    (the task dead-letters it). One transaction (bar, detections, outbox, checkpoints, watermark);
    see ``live_path``.
    """
    symbol, tier = check_symbol(symbol), _tier_of(timeframe)
    row = validate_bar(bar, timeframe).row()
    r = live_path.ingest(engine, redis_client, timeframe, tier, {symbol: row}, ttl_hours,
                         process_cache() if cache is None else cache, source="patterns.on_bar")
    return ScanResult(symbol, tier, r.bars, r.detected, r.new, r.published, r.relay_error)


def ingest_bars(engine: Engine, redis_client, timeframe, bars, ttl_hours: float = 24.0,
                cache: WindowCache | None = None, dead_letter_source: str | None = None
                ) -> tuple[ScanResult, dict[str, BarError]]:
    """The live path for many symbols at once (one new bar each): one transaction, one relay.

    Returns (totals, rejected): ``rejected`` maps each refused key to its ``BarError``; one bad bar
    never holds back the good ones. With ``dead_letter_source`` the refused bars are dead-lettered
    in the same transaction as the good ones (so a redelivered call cannot half-apply). A call that
    is wrong as a whole (timeframe, not a {symbol: bar} object, too many bars) raises ``BarError``.
    Uses ``live_batch.detect_last_segments`` (equal to the per-symbol path).
    """
    tier = _tier_of(timeframe)
    if not isinstance(bars, dict):
        raise BarError("bars", f"must be an object {{symbol: bar}}, got {type(bars).__name__}", "not an object")
    if len(bars) > MAX_BARS_PER_CALL:
        raise BarError("bars", f"{len(bars)} bars in one call; at most {MAX_BARS_PER_CALL}", "too many")
    good: dict[str, dict] = {}
    rejected: dict[str, BarError] = {}
    letters: list[dead_letters.Letter] = []
    for key, bar in bars.items():
        try:
            symbol = check_symbol(key)
            if symbol in good:
                raise BarError("symbol", f"{key!r} is {symbol}, which this call already holds", "duplicate")
            good[symbol] = validate_bar(bar, timeframe).row()
        except BarError as exc:
            rejected[str(key)] = exc
            if dead_letter_source:
                letters.append(dead_letters.Letter(dead_letter_source, str(exc),
                                                   {"symbol": key, "timeframe": timeframe, "bar": bar}, exc.field))
    if not good:
        if letters:
            live_path.keep_dead_letters(engine, letters)
        return ScanResult("*", tier, 0, 0, 0, 0), rejected
    r = live_path.ingest(engine, redis_client, timeframe, tier, good, ttl_hours,
                         process_cache() if cache is None else cache, source="patterns.on_bars",
                         letters=letters)
    return ScanResult("*", tier, r.bars, r.detected, r.new, r.published, r.relay_error), rejected


def _publish(engine: Engine, redis_client, result: ScanResult, new: list[Persisted],
             symbols: list[str], events: dict | None = None) -> ScanResult:
    """Publish this unit's unsent events now (low latency); a Redis failure leaves them to the beat relay.

    By symbol rather than by the rows just inserted: a redelivered unit (its worker killed after
    the commit, before the relay) inserts nothing new but still publishes what it left behind.
    """
    if redis_client is not None:
        report = relay_outbox(engine, redis_client, limit=len(new) + 1000, symbols=symbols, raise_on_error=False,
                              events=events)
        result.published, result.relay_error = report.published, report.remaining_error
    return result
