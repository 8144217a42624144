"""Detections -> ``pattern_detections`` + outbox + PATTERN_PUBLISHED log, and the outbox relay.

Why an outbox: the detection, its event and its PATTERN_PUBLISHED checkpoint are
written in one transaction, so a Redis outage cannot lose an event and a crash
cannot leave a detection without one. The relay publishes unsent rows in MULTI/EXEC
chunks (all of a chunk or none) and marks exactly the chunks Redis accepted; a
failing chunk stops the batch, the published prefix is committed as sent, and the
rest stay for the next run — so a retry never publishes twice. (The one remaining window: Redis accepted a
message and PostgreSQL died before the commit; the consumer can dedupe on flow_id.)
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence

from sqlalchemy import Engine, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared_models.models.patterns import PatternDetection, PatternOutbox

from .detection import Detection

CHANNEL = "tickstock.events.patterns"
PUBLISH_CHUNK = 200
SOURCE = "TickStockPL"


def build_event(det: Detection, flow_id: str, detected_at: float, ttl_hours: float) -> dict:
    """The exact DESIGN §4 event (top-level ``timestamp`` is refreshed when relayed)."""
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
            "timestamp": detected_at,
            "expires_at": detected_at + ttl_hours * 3600.0,
            "current_price": float(det.current_price),
            "price_change": float(det.price_change),
            "volume": int(det.volume),
            "indicators": {**det.indicators, "direction": det.direction,
                           "bar_time": det.bar_ts.timestamp()},
        },
    }


@dataclass(frozen=True)
class Persisted:
    detection_id: int
    flow_id: str
    symbol: str
    pattern: str


_LOG_MANY = text("""
SELECT count(log_integration_event(r.flow_id, 'pattern_detected', 'TickStockPL', 'PATTERN_PUBLISHED',
                                   r.channel, r.symbol, r.pattern, r.confidence, NULL, r.details))
FROM jsonb_to_recordset(CAST(:rows AS jsonb))
     AS r(flow_id uuid, channel varchar, symbol varchar, pattern varchar, confidence numeric, details jsonb)
""")


def persist_detections(session: Session, detections: Sequence[Detection], ttl_hours: float,
                       now: float | None = None) -> list[Persisted]:
    """Insert new detections with their outbox rows and PATTERN_PUBLISHED checkpoints.

    Idempotent: a detection whose (symbol, pattern, tier, bar_ts) exists is skipped, and
    so are its event and log. Runs in the caller's transaction.
    """
    if not detections:
        return []
    now = time.time() if now is None else now
    detected_at = datetime.fromtimestamp(now, timezone.utc)
    expires = detected_at + timedelta(hours=ttl_hours)
    rows, by_key = [], {}
    for d in detections:
        key = (d.symbol, d.pattern, d.tier, d.bar_ts)
        if key in by_key:
            continue
        by_key[key] = d
        rows.append({"symbol": d.symbol, "pattern": d.pattern, "tier": d.tier, "bar_ts": d.bar_ts,
                     "flow_id": uuid.uuid4(), "confidence": round(float(d.confidence), 2),
                     "current_price": float(d.current_price), "price_change": float(d.price_change),
                     "volume": float(d.volume), "indicators": d.indicators,
                     "detected_at": detected_at, "expires_at": expires})
    stmt = (insert(PatternDetection).values(rows)
            .on_conflict_do_nothing(constraint="uq_pattern_detections_key")
            .returning(PatternDetection.id, PatternDetection.flow_id, PatternDetection.symbol,
                       PatternDetection.pattern, PatternDetection.tier, PatternDetection.bar_ts))
    new = session.execute(stmt).all()
    if not new:
        return []
    outbox, logs, out = [], [], []
    for det_id, flow_id, symbol, pattern, tier, bar_ts in new:
        d = by_key[(symbol, pattern, tier, bar_ts)]
        fid = str(flow_id)
        event = build_event(d, fid, now, ttl_hours)
        outbox.append({"detection_id": det_id, "flow_id": flow_id, "channel": CHANNEL, "payload": event})
        logs.append({"flow_id": fid, "channel": CHANNEL, "symbol": symbol, "pattern": pattern,
                     "confidence": event["data"]["confidence"],
                     "details": {"tier": tier, "bar_time": bar_ts.timestamp(), "detection_id": det_id}})
        out.append(Persisted(det_id, fid, symbol, pattern))
    session.execute(insert(PatternOutbox).values(outbox))
    session.execute(_LOG_MANY, {"rows": json.dumps(logs)})
    return out


@dataclass
class RelayReport:
    published: int = 0
    remaining_error: str | None = None  # set when Redis failed; unsent rows stay for the next run


def relay_outbox(engine: Engine, redis_client, limit: int = 1000, ids: Iterable[int] | None = None,
                 raise_on_error: bool = True) -> RelayReport:
    """Publish unsent outbox rows (optionally only detection ``ids``) and mark them sent.

    Rows are locked FOR UPDATE SKIP LOCKED, so concurrent relays never publish the same
    row. On a Redis error the rows published so far are committed as sent and the error
    is re-raised (or reported, with ``raise_on_error=False``).
    """
    report = RelayReport()
    where = "sent_at IS NULL" + (" AND detection_id = ANY(:ids)" if ids is not None else "")
    params = {"limit": limit, **({"ids": list(ids)} if ids is not None else {})}
    error: BaseException | None = None
    with engine.begin() as conn:
        rows = conn.execute(text(f"SELECT id, channel, payload FROM pattern_outbox WHERE {where} "
                                 "ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED"), params).all()
        sent: list[int] = []
        for chunk in (rows[i:i + PUBLISH_CHUNK] for i in range(0, len(rows), PUBLISH_CHUNK)):
            # MULTI/EXEC: Redis runs the whole chunk or none of it, so "published" is known per chunk.
            pipe = redis_client.pipeline(transaction=True)
            for _row_id, channel, payload in chunk:
                payload["timestamp"] = time.time()
                pipe.publish(channel, json.dumps(payload))
            try:
                pipe.execute()
            except Exception as exc:  # noqa: BLE001 - any Redis failure ends the batch
                error = exc
                conn.execute(text("UPDATE pattern_outbox SET attempts = attempts + 1, last_error = :e "
                                  "WHERE id = ANY(:ids)"),
                             {"e": f"{type(exc).__name__}: {exc}"[:500], "ids": [r[0] for r in chunk]})
                break
            sent.extend(r[0] for r in chunk)
        if sent:
            conn.execute(text("UPDATE pattern_outbox SET sent_at = clock_timestamp(), attempts = attempts + 1 "
                              "WHERE id = ANY(:ids)"), {"ids": sent})
        report.published = len(sent)
    if error is not None:
        report.remaining_error = f"{type(error).__name__}: {error}"
        if raise_on_error:
            raise error
    return report


def unsent_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pattern_outbox WHERE sent_at IS NULL")).scalar_one()
