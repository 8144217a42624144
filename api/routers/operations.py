"""Operations: ``/health`` (no auth; 200 or 503) and ``/metrics`` (Prometheus text, scope ``read``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ..auth import READ
from ..errors import responses
from ..health import facts
from ..schemas.common import Envelope
from ..schemas.operations import Health, PoolHealth, Pools

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "Unhealthy"}})
def health() -> JSONResponse:
    """Database, Redis, schema revision and workers per pool — what `quantpipe status` knows."""
    f = facts()
    body = Health(status="ok" if f["healthy"] else "unhealthy", database=f["database"], redis=f["redis"],
                  schema_revision=f["revision"], schema_head=f["head"], errors=f["errors"],
                  age_seconds=f["age_seconds"],
                  pools={p: PoolHealth(workers=len(h), hostnames=sorted(h), queue_depth=f["depth"][p])
                         for p, h in f["workers"].items()})
    return JSONResponse(body.model_dump(), status_code=200 if f["healthy"] else 503,
                        headers={"Cache-Control": "no-store"})


@router.get("/metrics", dependencies=[READ], response_class=Response, responses={
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"},
    **responses(401, 403)})
def metrics() -> Response:
    """Queue depths, workers per pool, ingest events/s and lag, heartbeat age, outbox backlog,
    dead letters per source, promotions/rollbacks, HTTP latency."""
    from ..metrics import exposition

    body, content_type = exposition()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


@router.get("/api/v1/pools", response_model=Envelope[Pools], dependencies=[READ],
            responses=responses(401, 403, 503))
def pools() -> JSONResponse:
    """Every pool (the four and notify): workers, queue depth, tasks/s, dead letters, last error; heartbeat age."""
    from ..pools import overview

    body = Envelope[Pools](data=Pools(**overview()))
    return JSONResponse(body.model_dump(mode="json"), headers={"Cache-Control": "no-store"})
