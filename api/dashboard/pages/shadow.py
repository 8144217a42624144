"""Shadow models: champion vs each challenger, the sequential test, score and criteria, history; admin actions.

Reads call the handlers of ``GET /shadow/status``, ``/shadow/history``, ``/shadow/series/{model}`` and
``/shadow/sequential/{challenger}``. Deploy, promote and roll back are two steps (a confirmation
box, then a POST carrying the CSRF token) and run the handlers of ``POST /shadow/deploy``,
``/shadow/promote/{challenger}`` and ``/shadow/rollback`` as the logged-in key, so the registry,
the history and the alerts are exactly what the API would have produced.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from ...errors import ApiError
from ...routers import shadow as api
from ...schemas.shadow import DeployIn, PromoteIn, RollbackIn
from .. import charts
from ..render import page
from ..session import Viewer, admin, check_csrf, viewer

router = APIRouter(prefix="/dashboard/shadow", include_in_schema=False)
DONE = {"promote": "promoted to champion", "rollback": "restored as champion", "deploy": "deployed"}


def _data() -> dict:
    try:
        api.enabled()  # the routes' own dependency (ENABLE_SHADOW_MODELS)
        status = api.status_data()
    except ApiError as exc:
        return {"disabled": exc.message}
    history = api.history(limit=30).data
    models = ([status.champion.model_name] if status.champion else []) + [c.model_name for c in status.challengers]
    series = [api.series(model=m, points=300).data for m in models]
    seq = {c.model_name: api.sequential(challenger=c.model_name).data for c in status.challengers}
    named = [s for s in series if s.trade_count]
    curves = charts.lines([{"name": s.model_name, "x": s.n, "y": [round(v * 100, 3) for v in s.cumulative_return]}
                           for s in named], x_name="trades", y_name="cumulative return", y_suffix=" %")
    win = charts.lines([{"name": s.model_name, "x": s.n, "y": [round(v * 100, 2) for v in s.win_rate]}
                        for s in named], x_name="trades", y_name="win rate", y_suffix=" %",
                       mark_y=[("50 %", 50)])
    boundary = {name: charts.sequential([lk.model_dump() for lk in sq.looks if lk.n_trades <= max(
        sq.trade_count, sq.min_trades) + 5 * sq.interval]) for name, sq in seq.items()}
    return {"status": status, "history": history, "series": {s.model_name: s for s in series}, "seq": seq,
            "curves": curves, "win": win, "boundary": boundary,
            "points": sum(len(s.n) for s in named)}


@router.get("")
def shadow_page(request: Request, v: Viewer = Depends(viewer), confirm: str | None = None, model: str | None = None,
                done: str | None = None, error: str | None = None):
    q = request.query_params
    box = None
    if confirm in ("promote", "rollback", "deploy") and v.is_admin:
        box = {"action": confirm, "model": model, "model_name": q.get("model_name", "")[:100],
               "model_type": q.get("model_type", "")[:50], "description": q.get("description", "")[:2000]}
    return page(request, "shadow.html", viewer=v, active="shadow", d=_data(), confirm=box,
                done=DONE.get(done or ""), done_model=model if done else None, error=error)


def _refused(request: Request, v: Viewer, message: str, status: int) -> Response:
    return page(request, "shadow.html", viewer=v, active="shadow", d=_data(), confirm=None, done=None,
                done_model=None, error=message, status=status)


def _run(request: Request, v: Viewer, csrf_token: str, action: str, model: str, call) -> Response:
    if not check_csrf(v, csrf_token):
        return _refused(request, v, "The form was not sent by this page (CSRF token missing or wrong).", 403)
    try:
        api.enabled()
        result = call()
    except ApiError as exc:
        return _refused(request, v, exc.message, exc.status)
    except ValidationError as exc:
        first = exc.errors()[0]
        return _refused(request, v, f"{'.'.join(map(str, first['loc']))}: {first['msg']}", 422)
    if action == "rollback":
        model = result.data.champion
    return RedirectResponse("/dashboard/shadow?" + urlencode({"done": action, "model": model}), status_code=303)


@router.post("/promote")
def promote(request: Request, v: Viewer = Depends(admin), model: str = Form(..., max_length=100),
            reason: str = Form("", max_length=500), force: bool = Form(False), csrf_token: str = Form("")):
    return _run(request, v, csrf_token, "promote", model, lambda: api.promote(
        challenger=model, body=PromoteIn(force=force, reason=reason.strip() or None), who=v.principal))


@router.post("/rollback")
def rollback(request: Request, v: Viewer = Depends(admin), reason: str = Form("", max_length=500),
             csrf_token: str = Form("")):
    return _run(request, v, csrf_token, "rollback", "", lambda: api.rollback(RollbackIn(reason=reason.strip()),
                                                                             who=v.principal))


@router.post("/deploy")
def deploy(request: Request, v: Viewer = Depends(admin), model_name: str = Form(..., max_length=100),
           model_type: str = Form(..., max_length=50), description: str = Form("", max_length=2000),
           csrf_token: str = Form("")):
    return _run(request, v, csrf_token, "deploy", model_name, lambda: api.deploy(
        DeployIn(model_name=model_name.strip(), model_type=model_type.strip(), description=description),
        Response(), who=v.principal))
