"""Patterns: live detections feed, flow latency histogram and percentiles, detections per pattern and tier,
outbox backlog and heartbeat — the handlers of ``GET /api/v1/patterns/recent``, ``/flows``, ``/counts``
and ``/health``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from ...http import Page
from ...routers import patterns as api
from .. import charts
from ..render import page
from ..session import Viewer, viewer

router = APIRouter(prefix="/dashboard", include_in_schema=False)
TOP = 15
TIERS = ("daily", "intraday", "combo")


def _feed(limit: int = 25):
    return api.recent(p=Page(limit, 0), symbol=None, pattern=None, tier=None, active=False)


def _health():
    return api.producer_health().data


@router.get("/patterns")
def patterns_page(request: Request, v: Viewer = Depends(viewer),
                  minutes: int = Query(24 * 60, ge=1, le=366 * 24 * 60)):
    flows = api.flows(minutes=minutes, recent=0).data
    counts = api.counts(minutes=minutes).data
    lat = flows.latency_ms
    hist = charts.histogram(flows.histogram.edges_ms, flows.histogram.counts, x_name="latency", unit=" ms",
                            marks=[("p50", lat.p50), ("p99", lat.p99)])
    totals: dict[str, int] = {}
    for c in counts:
        totals[c.pattern] = totals.get(c.pattern, 0) + c.count
    top = sorted(totals, key=lambda p: (-totals[p], p))[:TOP]
    by = {(c.pattern, c.tier): c.count for c in counts}
    tiers = [t for t in TIERS if any((p, t) in by for p in top)]
    per = charts.bars(top, {t: [by.get((p, t), 0) for p in top] for t in tiers}, y_name="detections",
                      horizontal=True)
    return page(request, "patterns.html", viewer=v, active="patterns", flows=flows, lat=lat, hist=hist, per=per,
                n_patterns=len(totals), total=sum(totals.values()), minutes=minutes, health=_health(),
                feed=_feed().data, height=max(240, 26 * len(top) + 70))


@router.get("/_patterns/live")
def live_fragment(request: Request, v: Viewer = Depends(viewer)):
    return page(request, "_patterns_live.html", viewer=v, health=_health(), feed=_feed().data)
