"""Discovery: findings with filters, the co-trading network, and a page per politician with their trades on
the traded ticker's price chart and each finding's evidence drawn (periodogram, abnormal-return window).

Reads are the handlers of seed 002's routes (``/api/v1/discoveries/recent``, ``/anomalies/critical``,
``/networks``, ``/politicians``, ``/politicians/{id}``) and of ``/api/v1/prices/{symbol}``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

from fastapi import APIRouter, Depends, Query, Request, Response

from ...errors import ApiError
from ...http import Page
from ...routers import discovery as api
from ...routers import market
from ...schemas.discovery import PoliticianDetail
from .. import evidence
from ..render import page
from ..session import Viewer, viewer

router = APIRouter(prefix="/dashboard", include_in_schema=False)
PATTERN_TYPES = ("fourier_cycle", "ticker_concentration", "habitual_timing")
ANOMALY_TYPES = ("late_disclosure", "unusual_size", "abnormal_return")
PER_PAGE = 20


def _list(request: Request, kind: str, min_strength: float | None, days: int | None, offset: int) -> list[dict]:
    p, resp = Page(PER_PAGE + 1, offset), Response()
    if kind in ANOMALY_TYPES or kind == "anomalies":
        rows = api.critical_anomalies(request, resp, p, severity_threshold=min_strength or 0.0,
                                      anomaly_type=None if kind == "anomalies" else kind)
        return [{**r, "table": "anomaly", "type": r["anomaly_type"], "score": r["severity"],
                 "date": r["detection_date"]} for r in rows]
    if kind == "networks":
        rows = api.networks(request, resp, p, network_type=None, politician_id=None, min_strength=min_strength)
        return [{**r, "table": "network", "type": r["network_type"], "score": r["strength"],
                 "date": r["discovery_date"], "politician_name": ", ".join(n or "?" for n in r["member_names"][:3])
                 + ("…" if len(r["members"]) > 3 else ""), "politician_id": r["members"][0]} for r in rows]
    rows = api.recent_discoveries_sync(request, resp, p, min_strength=min_strength, days=days,
                                       pattern_type=None if kind == "patterns" else kind)
    return [{**r, "table": "pattern", "type": r["pattern_type"], "score": r["strength"], "date": r["discovery_date"]}
            for r in rows]


@router.get("/discovery")
def discovery_page(request: Request, v: Viewer = Depends(viewer),
                   kind: str = Query("patterns", pattern=r"^[a-z_]{1,40}$"),
                   min_strength: float | None = Query(None, ge=0, le=1), days: int | None = Query(None, ge=1, le=36500),
                   search: str | None = Query(None, max_length=200), offset: int = Query(0, ge=0, le=1_000_000)):
    rows = _list(request, kind, min_strength, days, offset)
    more, rows = len(rows) > PER_PAGE, rows[:PER_PAGE]
    people = api.politicians(request, Response(), Page(20, 0), search=search) if search else None
    pairs = api.networks(request, Response(), Page(80, 0), network_type="co_trading_pair", politician_id=None,
                         min_strength=None)
    network = evidence.network(pairs)
    return page(request, "discovery.html", viewer=v, active="discovery", rows=rows, kind=kind,
                min_strength=min_strength, days=days, search=search or "", people=people, offset=offset, more=more,
                per_page=PER_PAGE, pattern_types=PATTERN_TYPES, anomaly_types=ANOMALY_TYPES, network=network,
                n_pairs=len(pairs))


@router.get("/politicians/{politician_id}")
def politician_page(request: Request, politician_id: uuid.UUID, v: Viewer = Depends(viewer),
                    ticker: str | None = Query(None, pattern=r"^[A-Za-z0-9.\-]{1,16}$")):
    detail = PoliticianDetail.model_validate(api.politician(politician_id, Page(500, 0), ticker=None))
    trades = detail.trades
    traded = Counter(t.ticker for t in trades if t.ticker)
    charted = None
    for symbol in ([ticker.upper()] if ticker else []) + [s for s, _ in traded.most_common(12)]:
        # every trade of the ticker (the page above holds only the latest 500 of all tickers)
        mine = PoliticianDetail.model_validate(api.politician(politician_id, Page(500, 0), ticker=symbol)).trades
        if not mine:
            continue
        first, last = min(t.transaction_date for t in mine), max(t.transaction_date for t in mine)
        try:
            closes = market.closes(symbol=symbol, start=first - timedelta(days=90), end=last + timedelta(days=90)).data
        except ApiError:
            continue
        charted = {"symbol": symbol, "option": evidence.trades_on_price(closes, mine), "n": len(mine)}
        break
    pictures = evidence.for_findings(detail.patterns, detail.anomalies)
    ego = evidence.network([n.model_dump() for n in detail.network if n.network_type == "co_trading_pair"],
                           focus=str(politician_id))
    lags = [t.disclosure_date and (t.disclosure_date - t.transaction_date).days for t in trades]
    lags = [x for x in lags if x is not None]
    return page(request, "politician.html", viewer=v, active="discovery", d=detail, charted=charted,
                traded=traded.most_common(12), pictures=pictures, ego=ego, lags=sorted(lags),
                median_lag=sorted(lags)[len(lags) // 2] if lags else None)
