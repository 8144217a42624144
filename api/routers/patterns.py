"""Patterns: recent detections, flow latency percentiles, producer health (scope ``read``).

The health figures come from the pool's own functions (``producer_metrics``,
``heartbeat_age``); the two list queries are plain reads of the pool's tables and
of the ``pattern_flow_analysis`` view, run as the API role.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy import text

from ..auth import READ
from ..db import engine
from ..errors import responses
from ..http import Page, cacheable, page, page_info
from ..schemas.common import Envelope, PagedEnvelope
from ..schemas.patterns import Detection, Flow, Flows, Histogram, Latency, PatternCount, ProducerHealth

router = APIRouter(prefix="/api/v1/patterns", tags=["patterns"], dependencies=[READ],
                   responses=responses(401, 403, 422, 503))
OFFLINE_AFTER = 30.0  # the consumer's rule: a heartbeat older than this means the producer is offline
SYMBOL = Query(None, min_length=1, max_length=20, pattern=r"^[A-Za-z0-9.\-^=]+$")
TIER = Query(None, pattern="^(daily|intraday|combo)$")

RECENT = """
SELECT id, symbol, pattern, tier, bar_ts, confidence, current_price, price_change, volume, indicators, flow_id,
       detected_at, expires_at
FROM pattern_detections
WHERE (CAST(:symbol AS text) IS NULL OR symbol = upper(:symbol))
  AND (CAST(:pattern AS text) IS NULL OR pattern = :pattern)
  AND (CAST(:tier AS text) IS NULL OR tier = :tier)
  AND (NOT :active OR expires_at > now())
ORDER BY detected_at DESC, id DESC LIMIT :limit OFFSET :offset
"""
FLOW_STATS = """
SELECT count(*), count(*) FILTER (WHERE checkpoints_logged >= 2),
       percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]) WITHIN GROUP (ORDER BY total_latency_ms)
           FILTER (WHERE checkpoints_logged >= 2),
       max(total_latency_ms) FILTER (WHERE checkpoints_logged >= 2),
       avg(total_latency_ms) FILTER (WHERE checkpoints_logged >= 2)
FROM pattern_flow_analysis WHERE start_time > now() - make_interval(mins => :minutes)
"""
EDGES = (0, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)  # ms; the consumer's target is 100 ms
FLOW_HISTOGRAM = """
SELECT width_bucket(total_latency_ms, CAST(:edges AS float8[])) AS b, count(*)
FROM pattern_flow_analysis
WHERE start_time > now() - make_interval(mins => :minutes) AND checkpoints_logged >= 2
GROUP BY b ORDER BY b
"""
COUNTS = """
SELECT pattern, tier, count(*) AS n FROM pattern_detections
WHERE detected_at > now() - make_interval(mins => :minutes)
GROUP BY pattern, tier ORDER BY n DESC, pattern, tier
"""
FLOW_RECENT = """
SELECT flow_id, symbol, pattern_name, start_time, total_latency_ms, checkpoints_logged, flow_path
FROM pattern_flow_analysis WHERE start_time > now() - make_interval(mins => :minutes)
ORDER BY start_time DESC LIMIT :n
"""


@router.get("/recent", response_model=PagedEnvelope[Detection], dependencies=[Depends(cacheable(5))])
def recent(p: Page = Depends(page(50)), symbol: str | None = SYMBOL,
           pattern: str | None = Query(None, min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_]+$"),
           tier: str | None = TIER, active: bool = Query(False, description="Only detections not yet expired")):
    """Detections, newest first, filtered by symbol, pattern name and tier."""
    with engine().connect() as conn:
        rows = conn.execute(text(RECENT), {"symbol": symbol, "pattern": pattern, "tier": tier, "active": active,
                                           "limit": p.limit + 1, "offset": p.offset}).mappings().all()
    return PagedEnvelope[Detection](data=[Detection(**r) for r in rows[:p.limit]],
                                    page=page_info(p, min(len(rows), p.limit), len(rows) > p.limit))


@router.get("/flows", response_model=Envelope[Flows], dependencies=[Depends(cacheable(5))])
def flows(minutes: int = Query(60, ge=1, le=7 * 24 * 60, description="Window, minutes back from now"),
          recent: int = Query(20, ge=0, le=200, description="Most recent flows to list")):
    """Latency percentiles of pattern flows (PATTERN_PUBLISHED → last checkpoint) from ``pattern_flow_analysis``."""
    with engine().connect() as conn:
        n, complete, pct, mx, mean = conn.execute(text(FLOW_STATS), {"minutes": minutes}).one()
        rows = conn.execute(text(FLOW_RECENT), {"minutes": minutes, "n": recent}).mappings().all() if recent else []
        buckets = dict(conn.execute(text(FLOW_HISTOGRAM), {"minutes": minutes, "edges": list(EDGES)}).all())
    pct = [float(v) for v in pct] if pct else [None] * 4
    latency = Latency(p50=pct[0], p90=pct[1], p95=pct[2], p99=pct[3], max=None if mx is None else float(mx),
                      mean=None if mean is None else round(float(mean), 2))
    return Envelope[Flows](data=Flows(window_minutes=minutes, flows=int(n), complete_flows=int(complete),
                                      latency_ms=latency, recent=[Flow(**r) for r in rows],
                                      histogram=Histogram(edges_ms=list(EDGES), counts=[
                                          int(buckets.get(i, 0)) for i in range(1, len(EDGES) + 1)])))


@router.get("/counts", response_model=Envelope[list[PatternCount]], dependencies=[Depends(cacheable(5))])
def counts(minutes: int = Query(24 * 60, ge=1, le=366 * 24 * 60, description="Window, minutes back from now")):
    """Detections per pattern and tier in the window, most frequent first."""
    with engine().connect() as conn:
        rows = conn.execute(text(COUNTS), {"minutes": minutes}).mappings().all()
    return Envelope[list[PatternCount]](data=[PatternCount(pattern=r["pattern"], tier=r["tier"], count=int(r["n"]))
                                              for r in rows])


@router.get("/health", response_model=Envelope[ProducerHealth], dependencies=[Depends(cacheable(2))])
def producer_health():
    """Heartbeat age, producer alive (heartbeat <= 30 s), outbox backlog — the consumer's health view."""
    from workers.patterns.liveness import heartbeat_age, producer_metrics

    from ..health import _redis

    age = heartbeat_age(_redis())
    m = producer_metrics(engine())
    alive = age is not None and age <= OFFLINE_AFTER
    status = "offline" if not alive else ("degraded" if m["outbox_unsent"] >= 1000 else "healthy")
    return Envelope[ProducerHealth](data=ProducerHealth(
        status=status, heartbeat_age_seconds=None if age is None else round(age, 3), producer_alive=alive,
        outbox_backlog=m["outbox_unsent"], patterns_detected=m["patterns_detected"],
        events_last_minute=m["events_last_minute"], last_pattern_time=m["last_pattern_time"]))
