"""Seed 004's shadow-model routes with its envelope, over the shadow pool's public functions.

Writes run the pool's own logic in one transaction as the API role, exactly as the
CLI does (``registry.deploy``, ``decisions.evaluate_challenger`` / ``promote`` /
``rollback``, ``registry.record_trades``), then send the pool's alerts and enqueue
``shadow.evaluate`` by name. Reads need ``read``; deploy, promote, rollback need
``admin``; the trade-closed callback needs ``track``. ``/status`` is served from a
snapshot recomputed once per registry change (``api.shadow_status``).
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from shared_models.settings import get_settings

from ..auth import READ, TRACK, Principal, require
from ..db import read_session, unit_of_work
from ..errors import ApiError, field_of, responses
from ..http import cacheable
from ..schemas.common import Envelope
from ..schemas.shadow import (Comparison, Deployed, DeployIn, HistoryItem, Look, Promoted, PromoteIn, Recorded,
                              RolledBack, RollbackIn, Sequential, Series, Status, TradesIn)

STATUS_MAX_AGE = 5
router = APIRouter(prefix="/shadow", tags=["shadow"], responses=responses(401, 403, 422, 503))


def NAME():  # noqa: N802 - a fresh Path per route (FastAPI binds a FieldInfo to one parameter name)
    return Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def enabled() -> None:
    if not get_settings().shadow.enabled:
        raise ApiError(503, "shadow pool disabled (ENABLE_SHADOW_MODELS=false)")


async def enabled_async() -> None:
    """``enabled`` as a route dependency (a sync one costs a thread hop per request)."""
    enabled()


@contextlib.contextmanager
def shadow_errors():
    """ShadowError → 404 for an unknown model, else 409 (refused in this state) or 422 (a bad field)."""
    from workers.shadow.registry import ShadowError

    try:
        yield
    except ShadowError as exc:
        msg, field = str(exc), field_of(str(exc))
        status = 404 if "no model named" in msg else 409 if field in ("champion", "rollback", "model") else 422
        raise ApiError(status, msg, field) from None


def _jsonable(obj):
    from workers.shadow.service import jsonable

    return jsonable(obj)


def _send(alerts) -> None:
    if alerts:
        from workers.shadow.alerts import emit

        emit(alerts)


@router.get("/status", response_model=Envelope[Status], dependencies=[READ, Depends(enabled_async)])
async def status():
    """Champion and challengers: trades, win rate, Sharpe, drawdown, last decision and score."""
    from ..shadow_status import status_body

    return Response(await status_body(), media_type="application/json",
                    headers={"Cache-Control": f"private, max-age={STATUS_MAX_AGE}"})


def status_data() -> Status:
    """What ``/shadow/status`` answers, for sync callers (the dashboard)."""
    from ..shadow_status import status_sync

    return status_sync()


@router.get("/comparison/{challenger}", response_model=Envelope[Comparison],
            dependencies=[READ, Depends(enabled_async), Depends(cacheable(5))], responses=responses(404, 409))
def comparison(challenger: str = NAME()):
    """Evaluate the challenger against the champion now (read-only: nothing is stored or promoted)."""
    from workers.shadow import registry
    from workers.shadow.decisions import run_evaluation
    from workers.shadow.evaluation import EvalConfig

    settings = get_settings()
    with shadow_errors(), read_session() as session:
        ch = registry.get_model(session, challenger)
        champ = registry.get_champion(session)
        if champ is None:
            raise ApiError(409, "champion: there is no champion to compare with", "champion")
        if ch.id == champ.id:
            raise ApiError(409, f"challenger: {challenger!r} is the champion", "challenger")
        done = run_evaluation(session, ch, champ, EvalConfig.from_settings(settings))
        n = registry.trade_count(session, ch.id)
        champ_name = champ.name
        session.rollback()
    ev = None if done is None else _jsonable(done[1].as_dict())
    return Envelope[Comparison](data=Comparison(
        challenger=challenger, champion=champ_name, decision=ev["decision"] if ev else "PENDING",
        score=ev["score"] if ev else None, trade_count=n, min_trades=settings.shadow.min_trades, evaluation=ev))


@router.get("/history", response_model=Envelope[list[HistoryItem]], dependencies=[READ, Depends(cacheable(5))])
def history(limit: int = Query(50, ge=1, le=500)):
    """Promotion history (promote, manual, rollback, reject), newest first."""
    from workers.shadow import registry

    with read_session() as session:
        rows = registry.history(session, limit)
    return Envelope[list[HistoryItem]](data=[HistoryItem(from_model=r["from"], to_model=r["to"], **{
        k: r[k] for k in ("id", "event", "reason", "actor", "elapsed_ms", "created_at")}) for r in rows])


@router.get("/series/{model}", response_model=Envelope[Series], dependencies=[READ, Depends(cacheable(5))],
            responses=responses(404))
def series(model: str = NAME(), points: int = Query(400, ge=2, le=5000, description="Most points returned")):
    """Cumulative return and running win rate over the model's trades, in closing order."""
    import numpy as np

    from workers.shadow import registry

    with shadow_errors(), read_session() as session:
        m = registry.get_model(session, model)
        r = registry.returns(session, m.id)
        role = m.role
    n = r.size
    idx = np.unique(np.linspace(0, n - 1, min(points, n)).round().astype(int)) if n else np.zeros(0, int)
    cum, wins = np.cumsum(r), np.cumsum(r > 0) / np.arange(1, n + 1) if n else np.zeros(0)
    return Envelope[Series](data=Series(model_name=model, role=role, trade_count=int(n), n=(idx + 1).tolist(),
                                        cumulative_return=np.round(cum[idx], 6).tolist() if n else [],
                                        win_rate=np.round(wins[idx], 6).tolist() if n else []))


@router.get("/sequential/{challenger}", response_model=Envelope[Sequential],
            dependencies=[READ, Depends(cacheable(5))], responses=responses(404))
def sequential(challenger: str = NAME()):
    """The promotion boundary at every planned look, with the Welch z of every stored evaluation."""
    from sqlalchemy import select

    from shared_models.models.shadow import ShadowEvaluation
    from workers.shadow import registry
    from workers.shadow.evaluation import EvalConfig

    cfg = EvalConfig.from_settings(get_settings())
    with shadow_errors(), read_session() as session:
        ch = registry.get_model(session, challenger)
        champ = registry.get_champion(session)
        n = registry.trade_count(session, ch.id)
        evals = list(session.scalars(select(ShadowEvaluation).where(ShadowEvaluation.challenger_id == ch.id)
                                     .order_by(ShadowEvaluation.n_trades, ShadowEvaluation.id)))
        champ_name = None if champ is None else champ.name
    stored = {e.n_trades: e for e in evals}  # the latest champion's evaluation wins at a look
    looks = [Look(n_trades=int(k), boundary=round(float(b), 4),
                  z=_z(stored[k]) if k in stored else None,
                  decision=stored[k].decision if k in stored else None,
                  score=stored[k].score if k in stored else None)
             for k, b in zip(cfg.looks.tolist(), cfg.bounds().tolist())]
    latest = None if not evals else {**evals[-1].metrics, "decision": evals[-1].decision, "score": evals[-1].score,
                                     "n_trades": evals[-1].n_trades, "created_at": evals[-1].created_at}
    return Envelope[Sequential](data=Sequential(
        challenger=challenger, champion=champ_name, alpha=cfg.alpha, spending=cfg.spending, min_trades=cfg.min_trades,
        interval=cfg.interval, horizon=cfg.horizon, trade_count=n, looks=looks, latest=_jsonable(latest)))


def _z(ev) -> float | None:
    z = (ev.metrics or {}).get("metrics", {}).get("welch_z")
    return None if z is None else round(float(z), 4)


@router.post("/deploy", response_model=Envelope[Deployed], status_code=201, dependencies=[Depends(enabled_async)],
             responses={200: {"model": Envelope[Deployed], "description": "Already deployed (no change)"},
                        **responses(409)})
def deploy(body: DeployIn, response: Response, who: Principal = Depends(require("admin"))):
    """Register a model: the first one becomes the champion, later ones challengers at 0 % capital.

    Re-deploying the same name and type changes nothing (200)."""
    from sqlalchemy.exc import IntegrityError

    from workers.shadow import registry

    try:
        with shadow_errors(), unit_of_work() as session:
            first = registry.get_champion(session) is None
            model, created = registry.deploy(session, body.model_name, body.model_type, body.description,
                                             body.parameters, champion=first)
            out = Deployed(model_name=model.name, model_type=model.model_type, role=model.role,
                           allocation=model.allocation, created=created)
    except IntegrityError:  # two first deploys at once: one is the champion, retry as a challenger
        with shadow_errors(), unit_of_work() as session:
            model, created = registry.deploy(session, body.model_name, body.model_type, body.description,
                                             body.parameters)
            out = Deployed(model_name=model.name, model_type=model.model_type, role=model.role,
                           allocation=model.allocation, created=created)
    if not out.created:
        response.status_code = 200
    return Envelope[Deployed](data=out)


@router.post("/promote/{challenger}", response_model=Envelope[Promoted], dependencies=[Depends(enabled_async)],
             responses=responses(404, 409))
def promote(challenger: str = NAME(), body: PromoteIn | None = Body(None),
            who: Principal = Depends(require("admin"))):
    """Make the challenger the champion: when its evaluation APPROVES, or with ``force`` and a ``reason``.

    A refused promotion is a 409 whose message says why (the evaluation is in the history)."""
    from workers.shadow import decisions
    from workers.shadow.alerts import Alert

    body = body or PromoteIn()
    settings = get_settings()
    if body.force and not (body.reason and body.reason.strip()):
        raise ApiError(422, "reason: required with force (it is recorded in the promotion history)", "reason")
    with shadow_errors():
        if body.force:
            with unit_of_work() as session:
                ev = decisions.promote(session, challenger, actor=who.actor, reason=body.reason, force=True)
                ms = ev.elapsed_ms
            _send([Alert("promotion", challenger, f"{challenger} promoted manually: {body.reason}",
                         {"elapsed_ms": ms, "forced": True})])
            return Envelope[Promoted](data=Promoted(champion=challenger, decision="MANUAL", elapsed_ms=ms,
                                                    message=f"{challenger} promoted by {who.actor}", evaluation=None))
        with unit_of_work() as session:
            out = decisions.evaluate_challenger(session, challenger, settings, auto_promote=True, actor=who.actor)
    _send(out.alerts)
    if out.decision != "APPROVED":
        raise ApiError(409, f"{out.message}; not promoted (send force=true with a reason to override)", "challenger")
    elapsed = next((a.details.get("elapsed_ms") for a in out.alerts if a.kind == "promotion"), None)
    return Envelope[Promoted](data=Promoted(champion=challenger, decision=out.decision, message=out.message,
                                            elapsed_ms=elapsed, evaluation=out.evaluation))


@router.post("/rollback", response_model=Envelope[RolledBack], dependencies=[Depends(enabled_async)],
             responses=responses(409))
def rollback(body: RollbackIn, who: Principal = Depends(require("admin"))):
    """Give the champion role back to the model the current champion replaced (one transaction)."""
    from shared_models.models.shadow import ShadowModel
    from workers.shadow import decisions
    from workers.shadow.alerts import Alert

    with shadow_errors(), unit_of_work() as session:
        ev = decisions.rollback(session, actor=who.actor, reason=body.reason)
        now, before, ms = session.get(ShadowModel, ev.to_model_id).name, session.get(ShadowModel, ev.from_model_id).name, \
            ev.elapsed_ms
    _send([Alert("rollback", now, f"manual rollback to {now}: {body.reason}", {"elapsed_ms": ms})])
    return Envelope[RolledBack](data=RolledBack(champion=now, previous_champion=before, elapsed_ms=ms))


@router.post("/trades/{model}", response_model=Envelope[Recorded], dependencies=[TRACK, Depends(enabled_async)],
             responses=responses(404))
def record_trades(body: TradesIn, model: str = NAME()):
    """The trade-closed callback: a batch of outcomes, idempotent by ``trade_id``.

    Good rows are stored, bad rows kept in dead letters with the reason; reaching a planned
    look enqueues ``shadow.evaluate`` (as the ``shadow.record_trades`` task does)."""
    from workers.app import app
    from workers.shadow import registry

    s = get_settings().shadow
    with shadow_errors(), unit_of_work() as session:
        m = registry.get_model(session, model)
        res = registry.record_trades(session, m, body.trades, source="api:/shadow/trades", min_trades=s.min_trades,
                                     interval=s.check_interval, horizon=s.max_trades)
        role = m.role
    enqueue = bool(res.looks_reached and role == "challenger")
    if enqueue:
        app.send_task("shadow.evaluate", args=[model])
    return Envelope[Recorded](data=Recorded(**res.as_dict(), evaluation_enqueued=enqueue))
