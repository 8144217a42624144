"""Overview: every pool (workers, queue depth, tasks/s, last error, dead letters) and the heartbeat, live."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from ...pools import overview
from ...schemas.operations import Pools
from ..render import page
from ..session import Viewer, viewer

router = APIRouter(prefix="/dashboard", include_in_schema=False)


def _data() -> Pools:
    return Pools(**overview())  # the same function and schema as GET /api/v1/pools


@router.get("")
def overview_page(request: Request, v: Viewer = Depends(viewer)):
    return page(request, "overview.html", viewer=v, active="overview", o=_data())


@router.get("/_pools")
def pools_fragment(request: Request, v: Viewer = Depends(viewer)):
    return page(request, "_pools.html", viewer=v, o=_data())
