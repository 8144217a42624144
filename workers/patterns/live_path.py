"""The live bar path in as few PostgreSQL round trips as the guarantees allow.

Per unit of work (one symbol's bar, or one bar for each symbol of a universe tick):

1. ``BEGIN; upsert bars; watermark; version check + window read`` — one round trip
   (several statements in one simple query). The window comes from the process's
   ``WindowCache`` when ``pattern_bar_versions`` says the symbol's history was only
   appended to since it was cached; then only the newer bars travel.
2. detection (pure numpy / TA-Lib, ``live_batch.detect_last_segments``);
3. if anything was found: the detection + outbox + PATTERN_PUBLISHED statement;
4. ``COMMIT; BEGIN; SET LOCAL synchronous_commit = off; claim unsent outbox rows of these
   symbols`` — one round trip, only when there is something to publish; publish them
   (MULTI/EXEC chunks), then ``COMMIT`` the sent mark (or un-mark what Redis refused).

So the guarantees of ``scanning`` are unchanged: the unit's bars, detections, outbox rows,
checkpoints and watermark commit in one transaction, before anything is published; the relay
claims rows exactly as ``publisher.relay_outbox`` does. What is saved is the pool's pre-ping and
separate BEGINs: the process keeps one dedicated autocommit connection (explicit BEGIN/COMMIT),
dropped and re-opened after any connection error.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from .live_batch import COLUMNS, PANEL_WINDOW, Segments, detect_last_segments
from .publisher import CHANNEL, PERSIST_SQL, UNMARK_SQL, persist_params, publish_rows
from .window_cache import Window, WindowCache

COPY_ABOVE = 4  # more cold symbols than this: COPY + CSV parse beats fetching row tuples

UPSERT_SQL = """
INSERT INTO market_bars (symbol, timeframe, ts, open, high, low, close, volume, adjusted)
SELECT s, %(tf)s, to_timestamp(t), o, h, l, c, v, %(adj)s FROM unnest(%(s)s::varchar[], %(t)s::float8[], %(o)s::float8[],
    %(h)s::float8[], %(l)s::float8[], %(c)s::float8[], %(v)s::float8[]) AS x(s, t, o, h, l, c, v)
ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high,
    low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume
WHERE (market_bars.open, market_bars.high, market_bars.low, market_bars.close, market_bars.volume)
    IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume)
"""

WATERMARK_SQL = """
INSERT INTO pattern_scan_state (symbol, tier, last_bar_ts, updated_at)
SELECT s, %(tier)s, to_timestamp(t), now() FROM unnest(%(s)s::varchar[], %(t)s::float8[]) AS n(s, t)
ON CONFLICT (symbol, tier) DO UPDATE SET last_bar_ts = GREATEST(pattern_scan_state.last_bar_ts,
    EXCLUDED.last_bar_ts), updated_at = now()
"""

# One statement, so the version check and the bars read share one snapshot. Warm symbols
# (cached at the version still current, new bar not older than the cached one) get only
# the bars after the cached last one; the others get their whole window.
READ_SQL = """
WITH n AS (
    SELECT symbol, to_timestamp(until) AS until, cver, to_timestamp(clast) AS clast, k
    FROM unnest(%(s)s::varchar[], %(t)s::float8[], %(cver)s::bigint[], %(clast)s::float8[])
        WITH ORDINALITY AS n(symbol, until, cver, clast, k)
), v AS (
    SELECT n.k, n.symbol, n.until, n.clast, pv.version,
           COALESCE(pv.version = n.cver AND n.until >= n.clast, false) AS warm
    FROM n LEFT JOIN pattern_bar_versions pv ON pv.symbol = n.symbol AND pv.timeframe = %(tf)s
)
SELECT v.k, v.version, v.warm::int, extract(epoch FROM w.ts)::float8, w.open, w.high, w.low, w.close, w.volume,
       (SELECT count(*) FROM pattern_outbox WHERE sent_at IS NULL
            AND payload->'data'->>'symbol' = ANY(%(s)s::varchar[]))
FROM v LEFT JOIN LATERAL (
    SELECT ts, open, high, low, close, volume FROM market_bars b
    WHERE b.symbol = v.symbol AND b.timeframe = %(tf)s AND b.ts <= v.until AND (NOT v.warm OR b.ts > v.clast)
    ORDER BY b.ts DESC LIMIT %(window)s) w ON true
ORDER BY v.k, w.ts
"""

CLAIM_SQL = """
UPDATE pattern_outbox SET sent_at = clock_timestamp(), attempts = attempts + 1 WHERE id IN (
    SELECT id FROM pattern_outbox WHERE sent_at IS NULL AND payload->'data'->>'symbol' = ANY(%(s)s::varchar[])
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, channel, payload
"""

_NAMES = ["k", "version", "warm", "epoch", *COLUMNS, "unsent"]


@dataclass
class LiveResult:
    bars: int
    detected: int
    new: int
    published: int
    relay_error: str | None = None
    cache_hits: int = 0


_CONNS: dict[tuple[int, str], object] = {}


def _connection(engine: Engine):
    """This process's dedicated autocommit psycopg2 connection (no pool checkout, no pre-ping)."""
    key = (os.getpid(), engine.url.render_as_string(hide_password=True))
    conn = _CONNS.get(key)
    if conn is None or conn.closed:
        proxy = engine.raw_connection()
        conn = proxy.driver_connection
        proxy.detach()  # ours for the life of the process; the pool never sees it again
        conn.rollback()
        conn.autocommit = True
        _CONNS[key] = conn
    return key, conn


def _discard(key, conn) -> None:
    _CONNS.pop(key, None)
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - already broken
        pass


def ingest(engine: Engine, redis_client, timeframe: str, tier: str, bars: dict[str, dict], ttl_hours: float,
           cache: WindowCache) -> LiveResult:
    """Store validated ``bars`` ({symbol: bar}), detect on each symbol's newest bar, persist, publish."""
    symbols = list(bars)
    until = [b["ts"].timestamp() for b in bars.values()]  # epochs: far cheaper to send than timestamptz
    cached = [cache.get(s, timeframe) for s in symbols]
    params = {"tf": timeframe, "adj": timeframe == "1d", "tier": tier, "s": symbols, "t": until,
              **{k[0]: [b[k] for b in bars.values()] for k in ("open", "high", "low", "close")},
              "v": [b["volume"] for b in bars.values()], "window": PANEL_WINDOW,
              "cver": [w.version if w else None for w in cached],
              "clast": [w.last_epoch if w else None for w in cached]}
    cold = sum(w is None or w.last_epoch > u for w, u in zip(cached, until))
    key, conn = _connection(engine)
    committed = False
    try:
        with conn.cursor() as cur:
            head = f"BEGIN; {UPSERT_SQL}; {WATERMARK_SQL};"
            if cold > COPY_ABOVE:
                cur.execute(head, params)
                buf = io.StringIO()
                cur.copy_expert(f"COPY ({cur.mogrify(READ_SQL, params).decode()}) TO STDOUT WITH (FORMAT csv)", buf)
                buf.seek(0)
                # round_trip: the default fast parser can be 1 ulp off, enough to flip a borderline candle
                table = pd.read_csv(buf, header=None, names=_NAMES, dtype=float, float_precision="round_trip").to_numpy()
            else:
                cur.execute(head + READ_SQL, params)
                table = np.array(cur.fetchall(), dtype=float).reshape(-1, len(_NAMES))
            seg, windows, hits = _segments(symbols, cached, table)
            found = detect_last_segments(seg, tier)
            new = []
            if found:
                cur.execute(PERSIST_SQL, persist_params(found, ttl_hours))
                new = cur.fetchall()
            unsent = int(table[0, -1]) if len(table) else 0
            result = LiveResult(int(seg.lengths.sum()), len(found), len(new), 0, cache_hits=hits)
            if redis_client is None or not (new or unsent):
                cur.execute("COMMIT")
                committed = True
            else:
                cur.execute("COMMIT; BEGIN; SET LOCAL synchronous_commit = off; " + CLAIM_SQL,
                            {"s": symbols, "limit": len(new) + 1000})
                committed = True
                rows = sorted(cur.fetchall())
                sent, error = publish_rows(redis_client, rows)
                if error is not None:
                    cur.execute(UNMARK_SQL, {"e": f"{type(error).__name__}: {error}"[:500],
                                             "ids": [r[0] for r in rows[sent:]]})
                    result.relay_error = f"{type(error).__name__}: {error}"
                result.published = sent
                cur.execute("COMMIT")
    except BaseException as exc:
        if not committed:
            cache.drop(symbols, timeframe)
        import psycopg2

        if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) or conn.closed:
            _discard(key, conn)
        else:
            try:
                with conn.cursor() as cur:
                    cur.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - cannot roll back: the connection is unusable
                _discard(key, conn)
        raise
    for s, w in windows.items():  # only now: the bars these windows hold are committed
        cache.put(s, timeframe, w)
    cache.hits += hits
    cache.misses += len(symbols) - hits
    return result


def _segments(symbols: list[str], cached: list[Window | None], table: np.ndarray
              ) -> tuple[Segments, dict[str, Window], int]:
    """Each symbol's window (cache + new rows, or the rows read), as Segments for detection."""
    k = table[:, 0].astype(np.int64) - 1
    bounds = np.searchsorted(k, np.arange(len(symbols) + 1))
    windows: dict[str, Window] = {}
    hits = 0
    for i, s in enumerate(symbols):
        part = table[bounds[i]:bounds[i + 1]]
        if not len(part) or np.isnan(part[0, 1]):
            continue  # no version row: nothing stored (cannot happen after the upsert)
        version = int(part[0, 1])
        part = part[~np.isnan(part[:, 3])]
        epoch, data = part[:, 3], {c: part[:, 4 + j] for j, c in enumerate(COLUMNS)}
        w = cached[i]
        if bounds[i + 1] > bounds[i] and table[bounds[i], 2] == 1 and w is not None:
            newer = epoch > w.last_epoch
            windows[s] = w.extended(version, epoch[newer], {c: a[newer] for c, a in data.items()})
            hits += 1
        elif len(epoch):
            windows[s] = Window(version, np.ascontiguousarray(epoch), {c: np.ascontiguousarray(a)
                                                                       for c, a in data.items()})
    names = list(windows)
    if not names:
        return Segments([], np.array([], dtype=int), [], {c: np.array([]) for c in COLUMNS}), windows, hits
    ws = list(windows.values())
    return (Segments(names, np.array([len(w.epoch) for w in ws]),
                     [datetime.fromtimestamp(w.last_epoch, timezone.utc) for w in ws],
                     {c: np.concatenate([w.data[c] for w in ws]) for c in COLUMNS}), windows, hits)


__all__ = ["CHANNEL", "LiveResult", "ingest"]
