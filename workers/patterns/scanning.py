"""Scans over stored bars and the live bar path: read bars, detect, persist, relay (no Celery here).

One symbol and tier is one unit of work: its detections, outbox rows, checkpoints
and the scan watermark commit together, so a killed scan is simply redone and,
thanks to the idempotency key, adds nothing the first run already added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from .detection import TIMEFRAME_OF_TIER, Detection, combine, detect_frame
from .live_batch import PANEL_WINDOW, detect_last_segments
from .publisher import Persisted, persist_detections, relay_outbox

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
    with Session(engine) as session, session.begin():
        n_bars, found = detect_in_session(session, symbol, tier, since, incremental, first_scan_bars)
        new = persist_detections(session, found, ttl_hours)
    return _publish(engine, redis_client, ScanResult(symbol, tier, n_bars, len(found), len(new), 0), new, [symbol])


def ingest_bar(engine: Engine, redis_client, symbol: str, timeframe: str, bar: dict,
               ttl_hours: float = 24.0) -> ScanResult:
    """The live path: store one new bar and publish the patterns it completes.

    ``bar``: {"ts": epoch seconds or ISO string, "open", "high", "low", "close", "volume"}.
    Raises ValueError naming the field for a malformed bar (the task dead-letters it).
    """
    validated = validate_bar(bar)
    tier = {"1d": "daily", "1min": "intraday"}.get(timeframe)
    if tier is None:
        raise ValueError(f"timeframe: {timeframe!r} is not one of 1d, 1min")
    with Session(engine) as session, session.begin():
        _upsert_bars(session, timeframe, {symbol: validated})
        ts = validated["ts"]
        seg = read_windows(session, [symbol], [ts], timeframe, PANEL_WINDOW)
        found = detect_last_segments(seg, tier)
        new = persist_detections(session, found, ttl_hours)
        _set_watermark(session, symbol, tier, ts)
    return _publish(engine, redis_client, ScanResult(symbol, tier, int(seg.lengths.sum()), len(found), len(new), 0),
                    new, [symbol])


def _upsert_bars(session: Session, timeframe: str, bars: dict[str, dict]) -> None:
    """One statement for any number of validated bars (arrays, not one round trip per bar)."""
    cols = {k: [b[k] for b in bars.values()] for k in ("ts", "open", "high", "low", "close", "volume")}
    session.execute(text(
        "INSERT INTO market_bars (symbol, timeframe, ts, open, high, low, close, volume, adjusted) "
        "SELECT s, :tf, t, o, h, l, c, v, :adj FROM unnest(CAST(:s AS varchar[]), CAST(:t AS timestamptz[]), "
        "CAST(:o AS float8[]), CAST(:h AS float8[]), CAST(:l AS float8[]), CAST(:c AS float8[]), "
        "CAST(:v AS float8[])) AS x(s, t, o, h, l, c, v) "
        "ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high, "
        "low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume"),
        {"tf": timeframe, "adj": timeframe == "1d", "s": list(bars), "t": cols["ts"], "o": cols["open"],
         "h": cols["high"], "l": cols["low"], "c": cols["close"], "v": cols["volume"]})


def ingest_bars(engine: Engine, redis_client, timeframe: str, bars: dict[str, dict],
                ttl_hours: float = 24.0) -> tuple[ScanResult, dict[str, str]]:
    """The live path for many symbols at once (one new bar each): one transaction, one relay.

    Returns (totals, rejected) where ``rejected`` maps symbol -> error naming the field;
    the caller dead-letters those. Uses ``live_batch.detect_last`` (equal to the per-symbol path).
    """

    tier = {"1d": "daily", "1min": "intraday"}.get(timeframe)
    if tier is None:
        raise ValueError(f"timeframe: {timeframe!r} is not one of 1d, 1min")
    good, rejected = {}, {}
    for symbol, bar in bars.items():
        try:
            good[symbol.upper()] = validate_bar(bar)
        except ValueError as exc:
            rejected[symbol] = str(exc)
    if not good:
        return ScanResult("*", tier, 0, 0, 0, 0), rejected
    with Session(engine) as session, session.begin():
        _upsert_bars(session, timeframe, good)
        seg = read_windows(session, list(good), [b["ts"] for b in good.values()], timeframe, PANEL_WINDOW)
        found = detect_last_segments(seg, tier)
        new = persist_detections(session, found, ttl_hours)
        session.execute(text(
            "INSERT INTO pattern_scan_state (symbol, tier, last_bar_ts, updated_at) "
            "SELECT s, :tier, t, now() FROM unnest(CAST(:syms AS varchar[]), CAST(:tss AS timestamptz[])) AS n(s, t) "
            "ON CONFLICT (symbol, tier) DO UPDATE SET last_bar_ts = GREATEST(pattern_scan_state.last_bar_ts, "
            "EXCLUDED.last_bar_ts), updated_at = now()"),
            {"tier": tier, "syms": list(good), "tss": [b["ts"] for b in good.values()]})
    result = ScanResult("*", tier, int(seg.lengths.sum()), len(found), len(new), 0)
    return _publish(engine, redis_client, result, new, list(good)), rejected


def read_windows(session: Session, symbols: list[str], until: list[datetime], timeframe: str, window: int):
    """The last ``window`` bars up to each symbol's ``until``, via one COPY (no per-row Python objects)."""
    import io

    from .live_batch import COLUMNS, Segments

    # Symbols travel as their position in ``symbols`` (an all-numeric CSV parses several times faster).
    sql = ("SELECT n.k, extract(epoch FROM w.ts)::float8, w.open, w.high, w.low, w.close, w.volume "
           "FROM unnest(%s::varchar[], %s::timestamptz[]) WITH ORDINALITY AS n(symbol, ts, k) CROSS JOIN LATERAL ("
           "  SELECT ts, open, high, low, close, volume FROM market_bars b WHERE b.symbol = n.symbol "
           "  AND b.timeframe = %s AND b.ts <= n.ts ORDER BY b.ts DESC LIMIT %s) w ORDER BY n.k, w.ts")
    names = ["k", "epoch", *COLUMNS]
    cur = session.connection().connection.cursor()
    try:
        if len(symbols) <= 4:  # a few hundred rows: plain fetch beats COPY + CSV parsing
            cur.execute(sql, (symbols, until, timeframe, window))
            frame = pd.DataFrame(cur.fetchall(), columns=names)
        else:
            buf = io.StringIO()
            cur.copy_expert(f"COPY ({cur.mogrify(sql, (symbols, until, timeframe, window)).decode()}) "
                            "TO STDOUT WITH (FORMAT csv)", buf)
            buf.seek(0)
            frame = pd.read_csv(buf, header=None, names=names, dtype=float)
    finally:
        cur.close()
    if frame.empty:
        return Segments([], np.array([], dtype=int), [], {k: np.array([]) for k in COLUMNS})
    k = frame["k"].to_numpy(dtype=np.int64) - 1
    change = np.flatnonzero(k[1:] != k[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(k)]])
    epochs = frame["epoch"].to_numpy(dtype=float)
    sym = np.asarray(symbols, dtype=object)[k]
    return Segments(list(sym[starts]), ends - starts,
                    [datetime.fromtimestamp(e, timezone.utc) for e in epochs[ends - 1]],
                    {k: frame[k].to_numpy(dtype=float) for k in COLUMNS})


def validate_bar(bar: dict) -> dict:
    """Typed bar or ValueError naming the offending field."""
    out: dict = {}
    raw_ts = bar.get("ts")
    try:
        if isinstance(raw_ts, (int, float)):
            out["ts"] = datetime.fromtimestamp(float(raw_ts), timezone.utc)
        else:
            out["ts"] = pd.Timestamp(raw_ts).tz_localize("UTC").to_pydatetime() if pd.Timestamp(raw_ts).tzinfo \
                is None else pd.Timestamp(raw_ts).tz_convert("UTC").to_pydatetime()
    except (TypeError, ValueError):
        raise ValueError(f"ts: cannot parse {raw_ts!r} as a time") from None
    for f in ("open", "high", "low", "close", "volume"):
        try:
            out[f] = float(bar[f])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{f}: missing or not a number ({bar.get(f)!r})") from None
        if out[f] != out[f]:
            raise ValueError(f"{f}: NaN")
    if min(out["open"], out["high"], out["low"], out["close"]) <= 0:
        raise ValueError("open/high/low/close: prices must be positive")
    if out["high"] < out["low"]:
        raise ValueError(f"high: {out['high']} is below low {out['low']}")
    if out["volume"] < 0:
        raise ValueError(f"volume: negative ({out['volume']})")
    return out


def _publish(engine: Engine, redis_client, result: ScanResult, new: list[Persisted],
             symbols: list[str]) -> ScanResult:
    """Publish this unit's unsent events now (low latency); a Redis failure leaves them to the beat relay.

    By symbol rather than by the rows just inserted: a redelivered unit (its worker killed after
    the commit, before the relay) inserts nothing new but still publishes what it left behind.
    """
    if redis_client is not None:
        report = relay_outbox(engine, redis_client, limit=len(new) + 1000, symbols=symbols, raise_on_error=False)
        result.published, result.relay_error = report.published, report.remaining_error
    return result
