"""Detections -> ``pattern_detections`` + outbox + PATTERN_PUBLISHED log, and the outbox relay.

Why an outbox: the detection, its event and its PATTERN_PUBLISHED checkpoint are
written in one transaction, so a Redis outage cannot lose an event and a crash
cannot leave a detection without one. The relay publishes unsent rows in MULTI/EXEC
chunks (all of a chunk or none) and marks exactly the chunks Redis accepted; a
failing chunk stops the batch, the published prefix is committed as sent, and the
rest stay for the next run — so a retry never publishes twice. A message Redis accepted whose "sent" mark a
PostgreSQL crash then lost is not published again either: each PUBLISH sets a per-flow marker in the
same script (``publish_rows``).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence

import numpy as np
import orjson
from sqlalchemy import Engine, case, func, select, text, update
from sqlalchemy.orm import Session

from shared_models.models.patterns import PatternOutbox

from .detection import TIMEFRAME_OF_TIER, Detection

def _plain(x):
    """numpy scalars (an indicator computed by numpy) as Python numbers; anything else is a bug."""
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"not JSON: {type(x).__name__}")


def dumps(obj) -> bytes:
    """JSON of an event or of PERSIST_SQL's rows: orjson (~4x json.dumps on ~1,200 events a tick,
    issue #16 item 2); the same values, compact separators."""
    return orjson.dumps(obj, default=_plain)


CHANNEL = "tickstock.events.patterns"
PUBLISH_CHUNK = 200
SOURCE = "TickStockPL"


def build_event(det: Detection, flow_id: str, detected_at: float, ttl_hours: float) -> dict:
    """The exact DESIGN §4 event.

    Top-level ``timestamp``: the publish time (refreshed when relayed). ``data.timestamp``: the
    epoch of the bar that completed the pattern — the consumer keys stored patterns by
    ``symbol:pattern:int(data.timestamp)``, so detections of different bars never share it, and a
    republished event keeps it (it is stored in the outbox payload). ``data.timeframe``: that
    bar's timeframe. ``expires_at``: detection time + TTL (how long the alert is fresh).
    """
    return _event(det, flow_id, detected_at, detected_at + ttl_hours * 3600.0, det.bar_ts.timestamp())


def _event(det: Detection, flow_id: str, detected_at: float, expires_at: float, bar_time: float) -> dict:
    """``build_event`` with its per-call and per-bar values given (a tick's events share them)."""
    return {
        "event_type": "pattern_detected",
        "source": SOURCE,
        "timestamp": detected_at,
        "flow_id": flow_id,
        "data": {
            "symbol": det.symbol,
            "pattern": det.pattern,
            "confidence": round(float(det.confidence), 2),
            "flow_id": flow_id,
            "tier": det.tier,
            "source": det.tier,
            "timestamp": bar_time,
            "timeframe": TIMEFRAME_OF_TIER.get(det.tier, "1d"),
            "expires_at": expires_at,
            "current_price": float(det.current_price),
            "price_change": float(det.price_change),
            "volume": int(det.volume),
            "indicators": {**det.indicators, "direction": det.direction, "bar_time": bar_time},
        },
    }


def uuid4_strings(n: int) -> list[str]:
    """``str(uuid.uuid4())`` n times, from one ``os.urandom`` call (the same bytes in the same order):
    ~1 us a flow id instead of ~7 on a ~1,200-event tick (issue #16 item 2)."""
    b = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40  # version 4
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.tobytes().hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-{h[i + 20:i + 32]}"
            for i in range(0, 32 * n, 32)]


@dataclass(frozen=True)
class Persisted:
    detection_id: int
    flow_id: str
    symbol: str
    pattern: str


# One round trip: new detections (ON CONFLICT skips known keys), their outbox rows and their
# PATTERN_PUBLISHED checkpoints. Only rows the INSERT returned get an event and a log. Each returned
# row ends with its outbox id (the live path marks the rows it published by it).
# DBAPI (pyformat) parameters: the live path sends it on its own psycopg2 connection too.
# The checkpoints are one set-based INSERT of exactly the rows ``log_integration_event()`` writes
# (that function stays, for external callers; tests/workers/patterns/test_persist_log.py
# compares both): its latency is ms since the flow's first earlier checkpoint (``f``; a fresh
# flow has none), its timestamp ``clock_timestamp()`` per row. Calling the plpgsql function once
# per row was about half of this statement's time on a universe tick (issue #16 item 2).
PERSIST_SQL = """
WITH r AS (
    SELECT * FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS x(
        symbol varchar, pattern varchar, tier varchar, bar_ts timestamptz, flow_id uuid, confidence float8,
        current_price float8, price_change float8, volume float8, indicators jsonb, payload jsonb)
), d AS (
    INSERT INTO pattern_detections (symbol, pattern, tier, bar_ts, flow_id, confidence, current_price,
                                    price_change, volume, indicators, detected_at, expires_at)
    SELECT symbol, pattern, tier, bar_ts, flow_id, confidence, current_price, price_change, volume, indicators,
           CAST(%(detected_at)s AS timestamptz), CAST(%(expires_at)s AS timestamptz) FROM r
    ON CONFLICT ON CONSTRAINT uq_pattern_detections_key DO NOTHING
    RETURNING id, flow_id, symbol, pattern, tier, bar_ts, confidence
), a AS (  -- the audience (users whose library holds the symbol), written by notify's function
    SELECT * FROM pattern_audience(
        (SELECT coalesce(jsonb_agg(jsonb_build_object('detection_id', id, 'flow_id', flow_id, 'symbol', symbol,
                'pattern', pattern, 'tier', tier, 'confidence', confidence)), '[]'::jsonb) FROM d),
        %(audience_min_score)s, %(audience_half_life_days)s)
), o AS (
    INSERT INTO pattern_outbox (detection_id, flow_id, channel, payload)
    SELECT d.id, d.flow_id, %(channel)s, jsonb_set(r.payload, '{data,user_count}', to_jsonb(coalesce(a.user_count, 0)))
    FROM d JOIN r ON r.flow_id = d.flow_id LEFT JOIN a ON a.flow_id = d.flow_id
    RETURNING id, detection_id
), f AS (  -- earlier checkpoints of these flows (none for a fresh flow id), as log_integration_event reads them
    SELECT e.flow_id, min(e.timestamp) AS start FROM integration_events e
    WHERE e.flow_id IN (SELECT flow_id FROM d) GROUP BY e.flow_id
), l AS (
    INSERT INTO integration_events (flow_id, timestamp, event_type, source_system, checkpoint, channel, symbol,
                                    pattern_name, confidence, user_count, details, latency_ms)
    SELECT d.flow_id, n.now, 'pattern_detected', 'TickStockPL', 'PATTERN_PUBLISHED', %(channel)s, d.symbol, d.pattern,
           CAST(round(CAST(d.confidence AS numeric), 2) AS decimal(3,2)), coalesce(a.user_count, 0),
           jsonb_build_object('tier', d.tier, 'bar_time', extract(epoch FROM d.bar_ts), 'detection_id', d.id),
           CASE WHEN f.start IS NULL THEN NULL
                ELSE round((extract(epoch FROM (n.now - f.start)) * 1000)::numeric, 2) END
    FROM d LEFT JOIN a ON a.flow_id = d.flow_id LEFT JOIN f ON f.flow_id = d.flow_id
         CROSS JOIN LATERAL (SELECT clock_timestamp() AS now, d.id) n  -- d.id: evaluated per row
    RETURNING id, flow_id, user_count
)
SELECT d.id, d.flow_id::text, d.symbol, d.pattern, l.id, l.user_count, o.id
FROM d JOIN l ON l.flow_id = d.flow_id JOIN o ON o.detection_id = d.id
"""


def stored_events(events: dict, new: Sequence) -> dict:
    """The events of PERSIST_SQL's new rows exactly as the outbox holds them (with ``user_count``),
    so the unit that wrote them can publish from memory."""
    out = {}
    for row in new:
        ev = events[row[1]]
        ev["data"]["user_count"] = int(row[5])
        out[row[1]] = ev
    return out


def persist_detections(session: Session, detections: Sequence[Detection], ttl_hours: float,
                       now: float | None = None, events: dict | None = None) -> list[Persisted]:
    """Insert new detections with their outbox rows and PATTERN_PUBLISHED checkpoints.

    Idempotent: a detection whose (symbol, pattern, tier, bar_ts) exists is skipped, and
    so are its event and log. Runs in the caller's transaction, in one round trip.
    """
    if not detections:
        return []
    new = session.connection().exec_driver_sql(PERSIST_SQL, persist_params(detections, ttl_hours, now, events)).all()
    if events is not None:
        kept = stored_events(events, new)
        events.clear()
        events.update(kept)
    return [Persisted(det_id, fid, symbol, pattern) for det_id, fid, symbol, pattern, *_ in new]


def persist_params(detections: Sequence[Detection], ttl_hours: float, now: float | None = None,
                   events: dict | None = None) -> dict:
    """Parameters of PERSIST_SQL: one JSON row (with its exact event) per distinct detection key.

    ``events`` (optional) receives flow_id -> event, so a caller that publishes right after the
    commit need not read back (and decode) the payloads it just wrote."""
    now = time.time() if now is None else now
    detected_at = datetime.fromtimestamp(now, timezone.utc)
    expires = detected_at + timedelta(hours=ttl_hours)
    expires_at = now + ttl_hours * 3600.0
    # (bar_ts, its UTC offset) -> (epoch, ISO text): a tick has a few bars (equal instants of other
    # offsets are equal datetimes, whose ISO text differs)
    rows, seen, bars = [], set(), {}
    fids = iter(uuid4_strings(len(detections)))
    for d in detections:
        key = (d.symbol, d.pattern, d.tier, d.bar_ts)
        if key in seen:
            continue
        seen.add(key)
        fid = next(fids)
        bar = bars.get((d.bar_ts, d.bar_ts.utcoffset()))
        if bar is None:
            bar = bars[d.bar_ts, d.bar_ts.utcoffset()] = (d.bar_ts.timestamp(), d.bar_ts.isoformat())
        event = _event(d, fid, now, expires_at, bar[0])
        if events is not None:
            events[fid] = event
        data = event["data"]
        rows.append({"symbol": d.symbol, "pattern": d.pattern, "tier": d.tier, "bar_ts": bar[1],
                     "flow_id": fid, "confidence": data["confidence"],
                     "current_price": data["current_price"], "price_change": data["price_change"],
                     "volume": float(d.volume), "indicators": d.indicators, "payload": event})
    from shared_models.notifications import audience_params

    return {"rows": dumps(rows).decode(), "detected_at": detected_at, "expires_at": expires, "channel": CHANNEL,
            **audience_params()}


@dataclass
class RelayReport:
    published: int = 0
    remaining_error: str | None = None  # set when Redis failed; unsent rows stay for the next run


def relay_outbox(engine: Engine, redis_client, limit: int = 1000, ids: Iterable[int] | None = None,
                 raise_on_error: bool = True, symbols: Iterable[str] | None = None,
                 events: dict | None = None) -> RelayReport:
    """Publish unsent outbox rows (optionally only detection ``ids`` / ``symbols``) and mark them sent.

    Rows are claimed (UPDATE .. sent_at, FOR UPDATE SKIP LOCKED) so concurrent relays never
    publish the same row; on a Redis error the rows not yet published are un-marked, the
    published prefix commits as sent, and the error is re-raised (or reported). ``events``
    (flow_id -> event, from ``persist_params``) spares reading back payloads just written.
    """
    report = RelayReport()
    o = PatternOutbox.__table__
    pick = select(o.c.id).where(o.c.sent_at.is_(None))
    if ids is not None:
        pick = pick.where(o.c.detection_id.in_(list(ids)))
    if symbols is not None:
        pick = pick.where(o.c.payload[("data", "symbol")].astext.in_(list(symbols)))
    pick = pick.order_by(o.c.id).limit(limit).with_for_update(skip_locked=True)
    mine = [uuid.UUID(f) for f in (events or {})]
    claim = (update(o).where(o.c.id.in_(pick.scalar_subquery()))
             .values(sent_at=func.clock_timestamp(), attempts=o.c.attempts + 1)
             .returning(o.c.id, o.c.channel, case((o.c.flow_id.in_(mine), None), else_=o.c.payload) if mine
                        else o.c.payload, o.c.flow_id))
    error: BaseException | None = None
    with engine.begin() as conn:
        # The "sent" mark need not wait for the WAL flush: if a PostgreSQL crash loses it, the row is
        # claimed again and publish_rows finds the flow's marker (no second PUBLISH); never a lost
        # event, and it saves an fsync on the live path.
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        # Claim rows: marked sent inside this transaction, locked against other relays until commit.
        rows = sorted((i, ch, (events or {}).get(str(f)) if p is None else p, )
                      for i, ch, p, f in conn.execute(claim).all())
        sent, error = publish_rows(redis_client, rows)
        if error is not None:
            conn.exec_driver_sql(UNMARK_SQL, {"e": f"{type(error).__name__}: {error}"[:500],
                                              "ids": [r[0] for r in rows[sent:]]})
        report.published = sent
    if error is not None:
        report.remaining_error = f"{type(error).__name__}: {error}"
        if raise_on_error:
            raise error
    return report


UNMARK_SQL = "UPDATE pattern_outbox SET sent_at = NULL, last_error = %(e)s WHERE id = ANY(%(ids)s)"


# Publish-once: a flow's PUBLISH and its marker are one atomic script, so an event whose "sent"
# mark a PostgreSQL crash lost (the mark commits with synchronous_commit off) is not published
# again when the relay re-claims its row: the marker says Redis already carried it. -1 = skipped.
PUBLISH_ONCE_LUA = """
local out = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', tonumber(ARGV[1])) then
    out[i] = redis.call('PUBLISH', ARGV[2 * i], ARGV[2 * i + 1])
  else
    out[i] = -1
  end
end
return out
"""
PUBLISHED_KEY = "quantpipe:patterns:published:"
PUBLISHED_TTL_SECONDS = 86_400  # longer than any outage a relay waits out before re-publishing


def publish_rows(redis_client, rows: Sequence, counts: list[int] | None = None
                 ) -> tuple[int, BaseException | None]:
    """Publish claimed (id, channel, payload) rows, each at most once per flow_id: (rows done, error or None).

    One script per chunk, which Redis runs whole or not at all, so the done prefix is exact and the
    caller un-marks the rest. A row whose flow Redis already carried counts as done, unpublished.
    A forged marker could only suppress an event, which anyone able to write Redis can do anyway.
    ``counts`` (optional) receives each PUBLISH's number of receiving subscribers (0 for a skip).
    """
    script = redis_client.register_script(PUBLISH_ONCE_LUA)
    sent = 0
    for chunk in (rows[i:i + PUBLISH_CHUNK] for i in range(0, len(rows), PUBLISH_CHUNK)):
        keys, args = [], [PUBLISHED_TTL_SECONDS]
        for _row_id, channel, payload in chunk:
            payload["timestamp"] = time.time()
            keys.append(PUBLISHED_KEY + str(payload["flow_id"]))
            args += [channel, dumps(payload)]
        try:
            got = script(keys=keys, args=args)
        except Exception as exc:  # noqa: BLE001 - any Redis failure ends the batch
            return sent, exc
        if counts is not None:
            counts.extend(max(0, int(n)) for n in got)
        sent += len(chunk)
    return sent, None


def unsent_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(PatternOutbox).where(
            PatternOutbox.sent_at.is_(None))).scalar_one()
