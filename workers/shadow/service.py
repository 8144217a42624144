"""The shadow pool's public API: what the tasks, the CLI and the HTTP API call.

Each function is one unit of work (it opens and commits its own transaction),
takes names and plain values, and returns plain JSON-ready values (dicts with
the seed's field names: ``model_name``, ``promotion_status``,
``promotion_score``, ``trade_count``, ``metrics{win_rate, sharpe_ratio, …}``).
Alerts are sent after the commit. User errors raise ``ShadowError`` whose
message starts with the field at fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ShadowError

if TYPE_CHECKING:
    from .recording import RecordResult

__all__ = ["ShadowError", "comparison", "deploy", "history", "jsonable", "keep_rejected", "promote",
           "record_trades", "rollback", "status", "trades"]


def jsonable(obj: Any) -> Any:
    """numpy scalars, datetimes and non-finite floats → JSON-safe values (PostgreSQL jsonb rejects NaN)."""
    from datetime import datetime

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def _settings(settings):
    from shared_models.settings import get_settings

    return settings if settings is not None else get_settings()


def record_trades(model: Any, trades: Any, *, source: str = "api", settings=None,
                  max_reported: int | None = 100) -> "RecordResult":
    """Store a batch of closed trades of ``model`` (one transaction); bad rows are dead-lettered.

    ``result.evaluate`` says whether a challenger crossed a planned look (the caller enqueues
    ``shadow.evaluate``; the task does, the CLI does unless told not to). ``result.rejections``: the first
    ``max_reported`` rejected rows with their position, field and reason (None: all).
    """
    from shared_models.db import unit_of_work

    from . import recording

    sh = _settings(settings).shadow
    with unit_of_work() as session:
        return recording.record_trades(session, model, trades, source=source, min_trades=sh.min_trades,
                                       interval=sh.check_interval, horizon=sh.max_trades, max_reported=max_reported)


def keep_rejected(model: str, items: list[dict], *, source: str) -> int:
    """Dead-letter input a client could not even turn into rows (e.g. a CSV line that is not UTF-8):
    ``items`` are dicts with ``field``, ``reason`` and ``row`` (what was read), plus an optional ``line``."""
    from shared_models.db import unit_of_work

    from .recording import keep_rejections

    with unit_of_work() as session:
        keep_rejections(session, source=source, model=model,
                        rows=[(i.get("line", n), i.get("row"), i["field"], i["reason"]) for n, i in enumerate(items)])
    return len(items)


def deploy(name: str, model_type: str, description: str = "", parameters: dict | None = None,
           champion: bool = False) -> dict:
    """Register a model (a challenger in shadow, or the first champion); idempotent for the same name and type."""
    from shared_models.db import unit_of_work

    from . import registry

    with unit_of_work() as session:
        m, created = registry.deploy(session, name, model_type, description, parameters, champion)
        return {"model_name": m.name, "model_type": m.model_type, "role": m.role, "allocation": m.allocation,
                "created": created}


def _metrics(r: dict) -> dict:
    """The seed's metrics object ({} before the first trade, so the seed's ``if metrics:`` holds)."""
    if not r["trades"]:
        return {}
    return {"win_rate": r["win_rate"], "sharpe_ratio": r["sharpe"], "mean_return": r["mean_return"],
            "max_drawdown": r["max_drawdown"]}


def _row(r: dict) -> dict:
    out = {"model_name": r["name"], "model_type": r["type"], "description": r["description"], "role": r["role"],
           "allocation": r["allocation"], "trade_count": r["trades"], "metrics": _metrics(r),
           "created_at": r["created_at"], "promoted_at": r["promoted_at"]}
    if r["role"] == "challenger":
        out.update({"promotion_status": r["last_decision"] or "PENDING", "promotion_score": r["last_score"] or 0.0,
                    "evaluated_at_trades": r["evaluated_at_trades"], "evaluated_at": r["evaluated_at"],
                    "progress": r["progress"], "p_best": r["p_best"], "exploration": r["exploration"],
                    "min_track_record": r["min_track_record"], "needs_trades": r["needs_trades"]})
    return out


def status(settings=None, include_archived: bool = False) -> dict:
    """The seed's ``/shadow/status`` data: ``{"champion": {...} | None, "challengers": [...]}`` (+ archived)."""
    from shared_models.db import unit_of_work

    from .dashboard import overview

    s = _settings(settings)
    with unit_of_work() as session:
        rows = overview(session, s, include_archived=include_archived)
    champ = next((_row(r) for r in rows if r["role"] == "champion"), None)
    out = {"champion": champ, "challengers": [_row(r) for r in rows if r["role"] == "challenger"],
           "settings": {"min_trades": s.shadow.min_trades, "check_interval": s.shadow.check_interval,
                        "alpha": s.shadow.alpha, "max_trades": s.shadow.max_trades}}
    if include_archived:
        out["archived"] = [_row(r) for r in rows if r["role"] == "archived"]
    return jsonable(out)


def comparison(challenger: str, settings=None) -> dict:
    """The seed's ``/shadow/comparison/{challenger}``: evaluate now against the champion, read-only (nothing is
    stored or promoted). Before SHADOW_MIN_TRADES it says how far the challenger is."""
    from shared_models.db import session_factory

    from . import registry
    from .decisions import run_evaluation
    from .evaluation import EvalConfig

    s = _settings(settings)
    with session_factory()() as session:
        try:
            ch = registry.get_model(session, challenger)
            champ = registry.get_champion(session)
            if champ is None:
                raise ShadowError("champion: there is no champion to compare with")
            if ch.id == champ.id:
                raise ShadowError(f"challenger: {challenger!r} is the champion")
            n = registry.trade_count(session, ch.id)
            done = run_evaluation(session, ch, champ, EvalConfig.from_settings(s))
            names = (ch.name, champ.name)
        finally:
            session.rollback()
    base = {"model_name": names[0], "champion": names[1], "trade_count": n}
    if done is None:
        return jsonable({**base, "promotion_status": "PENDING", "promotion_score": 0.0, "evaluated_at_trades": None,
                         "criteria": [], "metrics": {}, "min_track_record": None,
                         "reason": f"{n} trades; evaluation starts at SHADOW_MIN_TRADES={s.shadow.min_trades}"})
    n_k, ev = done
    d = ev.as_dict()
    trl = d["metrics"].get("min_track_record")
    return jsonable({**base, "promotion_status": ev.decision, "promotion_score": ev.score, "evaluated_at_trades": n_k,
                     "look": ev.look, "boundary": ev.boundary, "criteria": d["criteria"], "metrics": d["metrics"],
                     "min_track_record": trl, "reason": d["metrics"].get("reason")})


def promote(challenger: str, *, actor: str, reason: str | None = None, force: bool = False, settings=None) -> dict:
    """Promote when the evaluation APPROVES (or, with ``force``, on a stated reason). ``promoted`` False with the
    decision and its reasons when it does not; alerts sent after the commit."""
    from shared_models.db import unit_of_work
    from shared_models.models.shadow import PromotionEvent

    from . import decisions, registry
    from .alerts import Alert, emit

    s = _settings(settings)
    if force:
        if not (reason and reason.strip()):
            raise ShadowError("reason: a forced promotion needs a reason (it is recorded in the history)")
        with unit_of_work() as session:
            before = registry.get_champion(session)
            previous = before.name if before else None
            ev = decisions.promote(session, challenger, actor=actor, reason=reason, force=True)
            out = {"promoted": True, "decision": "FORCED", "message": f"{challenger} promoted by {actor}: {reason}",
                   "evaluation": None, "event_id": ev.id, "elapsed_ms": ev.elapsed_ms}
        emit([Alert("promotion", challenger, out["message"], {"elapsed_ms": out["elapsed_ms"], "forced": True})])
        return jsonable({**out, "champion": challenger, "previous_champion": previous})
    with unit_of_work() as session:
        before = registry.get_champion(session)
        previous = before.name if before else None
        res = decisions.evaluate_challenger(session, challenger, s, auto_promote=True, actor=actor)
        promoted = res.decision == "APPROVED" and res.event_id is not None
        elapsed = session.get(PromotionEvent, res.event_id).elapsed_ms if promoted else None
    if res.alerts:
        emit(res.alerts)
    return jsonable({"promoted": promoted, "decision": res.decision, "message": res.message,
                     "evaluation": res.evaluation, "event_id": res.event_id,
                     "elapsed_ms": elapsed, "champion": challenger if promoted else previous,
                     "previous_champion": previous if promoted else None})


def rollback(*, actor: str, reason: str) -> dict:
    """Give the champion role back to the model the current champion replaced (one transaction)."""
    from shared_models.db import unit_of_work
    from shared_models.models.shadow import ShadowModel

    from . import decisions
    from .alerts import Alert, emit

    with unit_of_work() as session:
        ev = decisions.rollback(session, actor=actor, reason=reason)
        now, before = session.get(ShadowModel, ev.to_model_id).name, session.get(ShadowModel, ev.from_model_id).name
        out = {"champion": now, "previous_champion": before, "elapsed_ms": ev.elapsed_ms, "event_id": ev.id}
    emit([Alert("rollback", now, f"rollback to {now} by {actor}: {reason}", {"elapsed_ms": out["elapsed_ms"]})])
    return jsonable(out)


def history(limit: int = 50) -> list[dict]:
    """Promotion history, newest first: event, from, to, who, why, how long, when."""
    from shared_models.db import unit_of_work

    from . import registry

    with unit_of_work() as session:
        return jsonable(registry.history(session, limit))


def trades(model: str, limit: int = 100, offset: int = 0) -> dict:
    """A model's trades, newest first (``limit`` ≤ 1000)."""
    from sqlalchemy import select

    from shared_models.db import unit_of_work
    from shared_models.models.shadow import ShadowTrade

    from . import registry

    limit = max(0, min(int(limit), 1000))
    with unit_of_work() as session:
        m = registry.get_model(session, model)
        n = registry.trade_count(session, m.id)
        t = ShadowTrade
        rows = session.scalars(select(t).where(t.model_id == m.id).order_by(t.closed_at.desc(), t.id.desc())
                               .offset(max(0, int(offset))).limit(limit)).all()
        items = [{"trade_id": r.trade_id, "opened_at": r.opened_at, "closed_at": r.closed_at, "return": r.ret,
                  "pnl": r.pnl, "shadow": r.shadow, "opportunity_id": r.opportunity_id} for r in rows]
        return jsonable({"model_name": m.name, "role": m.role, "trade_count": n, "trades": items})
