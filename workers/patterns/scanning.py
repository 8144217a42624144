"""Scans over stored bars and the live bar path: read bars, detect, persist, relay (no Celery here).

One symbol and tier is one unit of work: its detections, outbox rows, checkpoints
and the scan watermark commit together, so a killed scan is simply redone and,
thanks to the idempotency key, adds nothing the first run already added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import DateTime, Engine, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared_models import dead_letters
from shared_models.bars import BarError, check_symbol, check_timeframe, validate_bar
from shared_models.models import MarketBar
from shared_models.models.patterns import PatternDetection, PatternScanState
from shared_models.settings import PatternsSettings

from . import live_path, live_tick
from .detection import TIMEFRAME_OF_TIER, Detection, combine, detect_frame, stored_direction
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
    b = MarketBar
    q = select(b.ts, b.open, b.high, b.low, b.close, b.volume).where(b.symbol == symbol, b.timeframe == timeframe)
    if since is not None:
        floor = (select(b.ts).where(b.symbol == symbol, b.timeframe == timeframe, b.ts <= since)
                 .order_by(b.ts.desc()).offset(HISTORY_BARS).limit(1).scalar_subquery())
        q = q.where(b.ts >= func.coalesce(floor, literal("-infinity", DateTime(timezone=True))))
    return pd.read_sql(q.order_by(b.ts), conn)


def _watermark(session: Session, symbol: str, tier: str) -> datetime | None:
    return session.scalar(select(PatternScanState.last_bar_ts).where(PatternScanState.symbol == symbol,
                                                                      PatternScanState.tier == tier))


def _set_watermark(session: Session, symbol: str, tier: str, ts: datetime) -> None:
    st = insert(PatternScanState).values(symbol=symbol, tier=tier, last_bar_ts=ts, updated_at=func.now())
    session.execute(st.on_conflict_do_update(
        index_elements=[PatternScanState.symbol, PatternScanState.tier],
        set_={"last_bar_ts": func.greatest(PatternScanState.last_bar_ts, st.excluded.last_bar_ts),
              "updated_at": func.now()}))


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
            since = session.scalar(select(MarketBar.ts).where(
                MarketBar.symbol == symbol, MarketBar.timeframe == TIMEFRAME_OF_TIER[tier])
                .order_by(MarketBar.ts.desc()).offset(first_scan_bars).limit(1))
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
    d = PatternDetection
    q = select(d.pattern, d.bar_ts, d.confidence, d.current_price, d.price_change, d.volume, d.indicators).where(
        d.symbol == symbol, d.tier == tier)
    if since is not None:
        q = q.where(d.bar_ts > since - timedelta(days=1))
    rows = session.execute(q.order_by(d.bar_ts)).all()
    return [Detection(symbol, p, tier, ts, c, price, chg, vol, stored_direction(p, ind or {}), ind or {})
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


LIVE_UNIT_SYMBOLS: int = PatternsSettings.live_unit_symbols  # PATTERNS_LIVE_UNIT_SYMBOLS' default


def ingest_bars(engine: Engine, redis_client, timeframe, bars, ttl_hours: float = 24.0,
                cache: WindowCache | None = None, dead_letter_source: str | None = None,
                unit_symbols: int = LIVE_UNIT_SYMBOLS) -> tuple[ScanResult, dict[str, BarError]]:
    """The live path for many symbols at once (one new bar each), in units of ``unit_symbols``.

    Each unit (up to ``unit_symbols`` symbols' bars) is one transaction and publishes its events
    right after its COMMIT, before the next unit persists (its read and detection overlap this
    unit's persist: ``live_tick``): an event waits for its own unit, not for the whole universe (issue #13: on a 503-symbol tick the last event of one transaction waited
    ~0.7 s under the demo's load). Units are independent (different symbols), so a call that fails
    part-way has committed whole units only; redone (acks_late, retry), those units add nothing
    (bars unchanged, detections keyed) and the rest are done.

    Returns (totals, rejected): ``rejected`` maps each refused key to its ``BarError``; one bad bar
    never holds back the good ones. With ``dead_letter_source`` the refused bars are dead-lettered
    in the last unit's transaction (so a redone call that failed in an earlier unit does not keep
    them twice). A call that is wrong as a whole (timeframe, not a {symbol: bar} object, too many
    bars) raises ``BarError``. Uses ``live_batch.detect_last_segments`` (equal to the per-symbol path).
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
    cache = process_cache() if cache is None else cache
    items, step = list(good.items()), max(1, int(unit_symbols))
    units = [dict(items[i:i + step]) for i in range(0, len(items), step)]
    total = ScanResult("*", tier, 0, 0, 0, 0)
    for r in live_tick.run(engine, redis_client, timeframe, tier, units, ttl_hours, cache, "patterns.on_bars",
                           letters):
        total.bars += r.bars
        total.detected += r.detected
        total.new += r.new
        total.published += r.published
        total.relay_error = total.relay_error or r.relay_error
    return total, rejected


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
