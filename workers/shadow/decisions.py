"""Evaluate, promote, reject and roll back — each inside the caller's single transaction.

Promotion and rollback lock the two model rows involved (``SELECT … FOR UPDATE``
in id order, so two promotions cannot deadlock) and re-check their roles after
the lock: of two concurrent promotions against the same champion, the second
finds that champion already archived and is refused. The swap demotes before
it promotes, so the partial unique index never sees two champions, and the
deferred trigger checks at COMMIT that exactly one is left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared_models.models.shadow import PromotionEvent, ShadowEvaluation, ShadowModel

from . import registry
from . import rollback as rb
from .alerts import Alert
from .evaluation import EvalConfig, evaluate
from .registry import ShadowError
from .sequential import look_index
from .service import jsonable


@dataclass
class Outcome:
    decision: str
    message: str
    evaluation: dict | None = None
    event_id: int | None = None
    alerts: list[Alert] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"decision": self.decision, "message": self.message, "evaluation": self.evaluation,
                "event_id": self.event_id, "alerts": [a.payload() for a in self.alerts]}


def _tell(session: Session, kind: str, key: str, title: str, data: dict) -> None:
    """Notify subscribers (shared_models.notifications): written in this transaction, so it goes out iff it commits."""
    from shared_models.notifications import raise_alert

    raise_alert(session, f"shadow.{kind}", key, title, jsonable(data))


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)


def _lock(session: Session, *ids: int) -> dict[int, ShadowModel]:
    q = (select(ShadowModel).where(ShadowModel.id.in_(ids)).order_by(ShadowModel.id).with_for_update()
         .execution_options(populate_existing=True))
    return {m.id: m for m in session.scalars(q)}


def _swap(old: ShadowModel, new: ShadowModel, session: Session) -> None:
    """Demote first (never two champions in any statement), then promote."""
    old.role, old.allocation = "archived", 0.0
    session.flush()
    new.role, new.allocation, new.promoted_at = "champion", 1.0, datetime.now(timezone.utc)
    session.flush()


def n_trials(session: Session) -> int:
    """Challengers tried so far (every model but the first champion): the DSR's number of trials."""
    return _trials(int(session.scalar(select(func.count()).select_from(ShadowModel)) or 1))


def _trials(models: int) -> int:
    return max(1, (models or 1) - 1)


def run_evaluation(session: Session, challenger: ShadowModel, champion: ShadowModel, cfg: EvalConfig):
    """(look size, evaluation) at the challenger's latest planned look; None before the first look."""
    n, models = registry.look_counts(session, challenger.id)    # its trades and n_trials' count, one statement
    k = look_index(n, cfg.looks)
    if k < 0:
        return None
    n_k = int(cfg.looks[k])
    ch, champ = registry.look_trades(session, challenger.id, champion.id, n_k)
    rng = np.random.default_rng([challenger.id, champion.id, n_k])   # same look, same resamples
    return n_k, evaluate(ch, champ, cfg, rng, _trials(models))


def evaluate_challenger(session: Session, name: str, settings, *, auto_promote: bool | None = None,
                        actor: str = "auto") -> Outcome:
    """Evaluate at the latest planned look and act on the decision (idempotent per look)."""
    t0 = time.perf_counter()
    cfg = EvalConfig.from_settings(settings)
    auto = settings.shadow.auto_promote if auto_promote is None else auto_promote
    ch, champ = registry.get_model_and_champion(session, name)
    if ch.role != "challenger":
        return Outcome("SKIPPED", f"{ch.name} is {ch.role}, not a challenger")
    if champ is None:
        return Outcome("PENDING", "no champion to compare with (deploy one with --champion)")
    done = run_evaluation(session, ch, champ, cfg)
    if done is None:
        return Outcome("PENDING", f"{ch.name}: fewer than SHADOW_MIN_TRADES ({cfg.min_trades}) trades")
    n_k, ev = done
    evaluation = jsonable(ev.as_dict())     # once: stored, returned and carried by the history row and alert
    stored = insert(ShadowEvaluation).values(
        challenger_id=ch.id, champion_id=champ.id, n_trades=n_k, decision=ev.decision, score=ev.score,
        metrics=evaluation, elapsed_ms=_ms(t0)).on_conflict_do_nothing().returning(ShadowEvaluation.id)
    look_row = session.execute(stored).first()
    if look_row is None:
        return Outcome("DUPLICATE", f"look at {n_k} trades was already evaluated", evaluation)
    out = Outcome(ev.decision, f"{ch.name} vs {champ.name} at {n_k} trades: {ev.decision} (score {ev.score})",
                  evaluation)
    if ev.decision == "APPROVED" and auto:
        event = promote(session, ch.name, actor=actor, reason=f"sequential test APPROVED at {n_k} trades "
                        f"(score {ev.score})", expected_champion_id=champ.id, metrics=out.evaluation, t0=t0,
                        model=ch)
        out.event_id = event.id
        out.alerts.append(Alert("promotion", ch.name, f"{ch.name} promoted over {champ.name} at {n_k} trades",
                                {"score": ev.score, "elapsed_ms": event.elapsed_ms}))
    elif ev.decision == "APPROVED":
        out.alerts.append(Alert("manual_review", ch.name, f"{ch.name} APPROVED at {n_k} trades; "
                                "SHADOW_AUTO_PROMOTE is off: promote it manually", {"score": ev.score}))
        _tell(session, "manual_review", f"evaluation:{look_row[0]}", f"{ch.name} APPROVED: promote manually",
              {"challenger": ch.name, "champion": champ.name, "decision": "APPROVED", "evaluation": out.evaluation})
    elif ev.decision == "REJECTED":
        locked = _lock(session, ch.id)[ch.id]
        locked.role = "archived"
        event = PromotionEvent(event="reject", from_model_id=champ.id, to_model_id=ch.id, metrics=out.evaluation,
                               reason=ev.metrics.get("reason", "rejected"), actor=actor, elapsed_ms=_ms(t0))
        session.add(event)
        session.flush()
        out.event_id = event.id
        out.alerts.append(Alert("manual_review", ch.name, f"{ch.name} REJECTED and archived: "
                                f"{ev.metrics.get('reason')}", {"score": ev.score}))
        _tell(session, "manual_review", f"evaluation:{look_row[0]}", f"{ch.name} REJECTED and archived",
              {"challenger": ch.name, "champion": champ.name, "decision": "REJECTED", "evaluation": out.evaluation,
               "reason": ev.metrics.get("reason")})
    return out


def promote(session: Session, name: str, *, actor: str, reason: str, force: bool = False,
            expected_champion_id: int | None = None, metrics: dict | None = None,
            t0: float | None = None, model: ShadowModel | None = None) -> PromotionEvent:
    """Swap champion and challenger in this transaction and record who, why and how long (``model``: the row of
    ``name`` when the caller has just read it; it is locked and re-read either way)."""
    t0 = time.perf_counter() if t0 is None else t0
    if not reason or not reason.strip():
        raise ShadowError("reason: a promotion needs a reason")
    target = model if model is not None and model.name == name else registry.get_model(session, name)
    champ_id = expected_champion_id
    if champ_id is None:
        current = registry.get_champion(session)
        if current is None:
            raise ShadowError("champion: there is no champion to replace")
        champ_id = current.id
    rows = _lock(session, target.id, champ_id)
    target, champ = rows[target.id], rows.get(champ_id)
    if target.role != "challenger":
        raise ShadowError(f"model: {target.name!r} is {target.role}, not a challenger; promotion refused")
    if champ is None or champ.role != "champion":
        raise ShadowError("champion: the champion changed while this promotion was decided; promotion refused "
                          "(re-evaluate against the new champion)")
    _swap(champ, target, session)
    event = PromotionEvent(event="manual" if force else "promote", from_model_id=champ.id, to_model_id=target.id,
                           metrics=metrics or {}, reason=reason.strip(), actor=actor, elapsed_ms=0.0)
    session.add(event)
    event.elapsed_ms = _ms(t0)
    session.flush()
    n_target, n_champ = registry.trade_count(session, target.id), registry.trade_count(session, champ.id)
    _tell(session, "promotion", f"event:{event.id}", f"{target.name} promoted over {champ.name}",
          {"challenger": target.name, "previous_champion": champ.name, "actor": actor, "reason": event.reason,
           "forced": force, "event_id": event.id, "elapsed_ms": event.elapsed_ms, "evaluation": metrics or {},
           "trades": {"challenger": n_target, "champion": n_champ}})
    return event


def rollback(session: Session, *, actor: str, reason: str, expected_champion_id: int | None = None,
             metrics: dict | None = None, t0: float | None = None) -> PromotionEvent:
    """Give the champion role back to the model the current champion replaced."""
    t0 = time.perf_counter() if t0 is None else t0
    if not reason or not reason.strip():
        raise ShadowError("reason: a rollback needs a reason")
    champ = registry.get_champion(session)
    if champ is None:
        raise ShadowError("champion: there is no champion to roll back")
    if expected_champion_id is not None and champ.id != expected_champion_id:
        raise ShadowError("champion: changed since the rollback was decided; rollback refused")
    last = session.scalar(select(PromotionEvent).where(PromotionEvent.to_model_id == champ.id,
                                                       PromotionEvent.event.in_(("promote", "manual")))
                          .order_by(PromotionEvent.id.desc()).limit(1))
    if last is None or last.from_model_id is None:
        raise ShadowError(f"rollback: {champ.name!r} was never promoted over another model; nothing to roll back to")
    rows = _lock(session, champ.id, last.from_model_id)
    champ, prev = rows[champ.id], rows.get(last.from_model_id)
    if champ.role != "champion":
        raise ShadowError("champion: changed while the rollback was decided; rollback refused")
    if prev is None:
        raise ShadowError("rollback: the previous champion no longer exists")
    _swap(champ, prev, session)
    event = PromotionEvent(event="rollback", from_model_id=champ.id, to_model_id=prev.id, metrics=metrics or {},
                           reason=reason.strip(), actor=actor, elapsed_ms=0.0)
    session.add(event)
    event.elapsed_ms = _ms(t0)
    session.flush()
    _tell(session, "rollback", f"event:{event.id}", f"{champ.name} rolled back to {prev.name}",
          {"from_model": champ.name, "to_model": prev.name, "actor": actor, "reason": event.reason,
           "event_id": event.id, "elapsed_ms": event.elapsed_ms, "metrics": metrics or {}})
    return event


def monitor_champion(session: Session, settings) -> Outcome:
    """The automatic rollback rule (``rollback.monitor``) applied to the current champion."""
    t0 = time.perf_counter()
    champ = registry.get_champion(session)
    if champ is None:
        return Outcome("IDLE", "no champion")
    last = session.scalar(select(PromotionEvent).where(PromotionEvent.to_model_id == champ.id)
                          .order_by(PromotionEvent.id.desc()).limit(1))
    if last is None or last.event not in ("promote", "manual") or last.from_model_id is None:
        return Outcome("IDLE", f"{champ.name} is not a fresh promotion; nothing to monitor")
    cfg = rb.RollbackConfig.from_settings(settings)
    new = registry.returns(session, champ.id, after=champ.promoted_at, limit=cfg.window)
    ref = registry.returns(session, last.from_model_id, until=champ.promoted_at,
                           limit=settings.shadow.max_trades, newest=True)
    res = rb.monitor(new, ref, cfg)
    out = Outcome("OK", f"{champ.name}: {res.reason}", {"monitor": res.as_dict()})
    if res.rollback:
        event = rollback(session, actor="monitor", reason=f"automatic rollback: {res.reason}",
                         expected_champion_id=champ.id, metrics={"monitor": res.as_dict()}, t0=t0)
        out.decision, out.event_id = "ROLLED_BACK", event.id
        out.alerts.append(Alert("rollback", champ.name, f"{champ.name} rolled back: {res.reason}",
                                {"elapsed_ms": event.elapsed_ms}))
    elif res.degraded:
        out.decision = "DEGRADED"
        out.alerts.append(Alert("degradation", champ.name, f"{champ.name} degrading: {res.reason}",
                                {"look": res.looks_done}))
        _tell(session, "degradation", f"{champ.id}:{champ.promoted_at.timestamp():.0f}:{res.looks_done}",
              f"{champ.name} degrading", {"champion": champ.name, "monitor": res.as_dict()})
    elif res.finished:
        out.decision = "CONFIRMED"
    return out
