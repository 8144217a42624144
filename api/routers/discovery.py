"""Seed 002's discovery routes, over ``shared_models.discoveries`` (the one read layer).

Lists are bare JSON arrays as in the seed's main app; the next page is announced
with a ``Link: <…>; rel="next"`` header. The one write, marking an anomaly
investigated, needs ``admin``. ``/discoveries/recent``, the main app's hot read, is
async over the asyncpg engine (one statement, no thread hop; see ``api.db``).
"""

from __future__ import annotations

import uuid
from typing import Callable, TypeVar

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from shared_models import discoveries as reads

from ..auth import ADMIN, READ
from ..db import async_core, read_session, unit_of_work
from ..errors import ApiError, field_of, not_found, responses
from ..http import Page, cacheable, link_next, page
from ..schemas.discovery import (AnomalyOut, ExperimentOut, Investigated, NetworkOut, PatternDiscoveryOut,
                                 PoliticianDetail, PoliticianOut)

router = APIRouter(prefix="/api/v1", tags=["discovery"], dependencies=[READ],
                   responses=responses(401, 403, 422, 503))
T = TypeVar("T")
BIGINT = 2**63 - 1
Unit = Query(None, ge=0, le=1)


def call(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run a read function in a read-only session; its ValueError is a 422, LookupError a 404."""
    with read_session() as session:
        try:
            return fn(session, *args, **kwargs)
        except LookupError as exc:
            raise not_found(str(exc), field_of(str(exc))) from None
        except ValueError as exc:
            raise ApiError(422, str(exc), field_of(str(exc))) from None


def paged(request: Request, response: Response, p: Page, fn: Callable[..., list], *args, **kwargs) -> list:
    """One row more than asked tells whether a next page exists (within the read layer's maximum)."""
    ask = min(p.limit + 1, reads.MAX_LIMIT)
    return _page_of(request, response, p, ask, call(fn, *args, limit=ask, offset=p.offset, **kwargs))


async def paged_async(request: Request, response: Response, p: Page, fn: Callable[..., list], *args, **kwargs):
    """``paged`` on the asyncpg engine, for read functions that run Core statements only."""
    ask = min(p.limit + 1, reads.MAX_LIMIT)
    try:
        rows = await async_core(fn, *args, limit=ask, offset=p.offset, **kwargs)
    except LookupError as exc:
        raise not_found(str(exc), field_of(str(exc))) from None
    except ValueError as exc:
        raise ApiError(422, str(exc), field_of(str(exc))) from None
    return _page_of(request, response, p, ask, rows)


def _page_of(request: Request, response: Response, p: Page, ask: int, rows: list) -> list:
    link_next(request, response, p, len(rows) > p.limit or (ask == p.limit and len(rows) == ask))
    return rows[:p.limit]


@router.get("/discoveries/recent", response_model=list[PatternDiscoveryOut], dependencies=[Depends(cacheable(10))])
async def recent_discoveries(request: Request, response: Response, p: Page = Depends(page(10)),
                       min_strength: float | None = Unit,
                       days: int | None = Query(None, ge=1, le=36500, description="Only the last N days"),
                       pattern_type: str | None = Query(None, min_length=1, max_length=40,
                                                        description="Only this type, e.g. fourier_cycle")):
    """Pattern discoveries, newest first, with ``politician_name`` (strength > ``min_strength`` when given)."""
    return await paged_async(request, response, p, reads.recent_discoveries, min_strength, days=days,
                             pattern_type=pattern_type)


def recent_discoveries_sync(request: Request, response: Response, p: Page, min_strength: float | None = None,
                            days: int | None = None, pattern_type: str | None = None) -> list:
    """The same read for sync callers (the dashboard's pages run in worker threads)."""
    return paged(request, response, p, reads.recent_discoveries, min_strength, days=days, pattern_type=pattern_type)


@router.get("/anomalies/critical", response_model=list[AnomalyOut], dependencies=[Depends(cacheable(10))])
def critical_anomalies(request: Request, response: Response, p: Page = Depends(page(50)),
                       severity_threshold: float = Query(0.8, ge=0, le=1),
                       anomaly_type: str | None = Query(None, min_length=1, max_length=40,
                                                        description="Only this type, e.g. late_disclosure")):
    """Uninvestigated anomalies with severity >= ``severity_threshold``, most severe first."""
    return paged(request, response, p, reads.critical_anomalies, severity_threshold, anomaly_type=anomaly_type)


@router.get("/discoveries/politician/{politician_id}", response_model=list[PatternDiscoveryOut],
            dependencies=[Depends(cacheable(30))], responses=responses(404))
def politician_discoveries(request: Request, response: Response, politician_id: uuid.UUID,
                           p: Page = Depends(page(50))):
    """One politician's pattern discoveries, strongest first (404 for an unknown politician)."""
    return paged(request, response, p, reads.politician_discoveries, politician_id)


@router.post("/anomalies/{anomaly_id}/investigated", response_model=AnomalyOut, dependencies=[ADMIN],
             responses=responses(404))
def mark_investigated(anomaly_id: int = Path(ge=1, le=BIGINT),
                      body: Investigated | None = Body(None, description='{"investigated": true} (default)')):
    """Mark an anomaly investigated (idempotent); the only write the main app makes."""
    flag = True if body is None else body.investigated
    with unit_of_work() as session:
        if not reads.mark_investigated(session, anomaly_id, flag):
            raise not_found(f"anomaly_id: no anomaly with id {anomaly_id}", "anomaly_id")
        return reads.get_anomaly(session, anomaly_id)


@router.get("/politicians", response_model=list[PoliticianOut], dependencies=[Depends(cacheable(60))])
def politicians(request: Request, response: Response, p: Page = Depends(page(50)),
                search: str | None = Query(None, max_length=200, description="Name or any recorded spelling")):
    """Politicians (all, or matching ``search``), by name, with their trade count."""
    return paged(request, response, p, reads.search_politicians, search)


@router.get("/politicians/{politician_id}", response_model=PoliticianDetail, dependencies=[Depends(cacheable(30))],
            responses=responses(404))
def politician(politician_id: uuid.UUID, p: Page = Depends(page(100)),
               ticker: str | None = Query(None, min_length=1, max_length=16, pattern=r"^[A-Za-z0-9.\-]+$",
                                          description="Only trades of this ticker")):
    """One politician: a page of trades (newest first; ``limit``/``offset`` page them) and every finding."""
    return call(reads.politician_detail, politician_id, trades_limit=p.limit, trades_offset=p.offset, ticker=ticker)


@router.get("/networks", response_model=list[NetworkOut], dependencies=[Depends(cacheable(60))])
def networks(request: Request, response: Response, p: Page = Depends(page(50)),
             network_type: str | None = Query(None, max_length=40),
             politician_id: uuid.UUID | None = None, min_strength: float | None = Unit):
    """Co-trading pairs and communities, strongest first, each with ``member_names``."""
    return paged(request, response, p, reads.network_discoveries, network_type=network_type,
                 politician_id=politician_id, min_strength=min_strength)


@router.get("/experiments", response_model=list[ExperimentOut], dependencies=[Depends(cacheable(60))])
def experiments(request: Request, response: Response, p: Page = Depends(page(50))):
    """Model experiments (copy-trading strategies), newest first, with their deployment verdict."""
    return paged(request, response, p, reads.experiments)
