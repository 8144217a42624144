"""Celery tasks of the shadow pool: thin bodies that call the pool's pure logic.

Every task takes names/ids and plain JSON values, runs one unit of work (one
transaction) and sends its alerts only after the commit. All are idempotent:
trades are unique per (model, trade id), an evaluation is unique per (challenger,
champion, look), promotion/rollback re-check roles under row locks.
With ENABLE_SHADOW_MODELS=false every task returns at once with a log line.

The statistics (numpy, scipy) and the sequential boundaries load at a task's first
use (the boundaries are cached per process, ``sequential.boundaries``), not at
worker start: an idle shadow worker costs what a bare Celery worker does (issue #16
item 5); the first evaluation of a process pays the import and the boundaries
(about 1 s on this machine).
"""

from __future__ import annotations

import functools
import logging

from shared_models.settings import get_settings
from workers.app import app
from workers.ping import ping_task
from workers.retention import prune_task

log = logging.getLogger(__name__)


ping = ping_task("shadow")
prune = prune_task("shadow")


def when_enabled(name: str, ignore_result: bool = False):
    """With ENABLE_SHADOW_MODELS=false the task returns ``{"disabled": true}`` with a log line (the one check)."""
    def wrap(fn):
        @functools.wraps(fn)
        def task(*args, **kwargs):
            if get_settings().shadow.enabled:
                return fn(*args, **kwargs)
            from .alerts import log_info

            msg = f"{name}: shadow pool disabled (ENABLE_SHADOW_MODELS=false); nothing done"
            log.info(msg)
            log_info(msg)
            return {"disabled": True, "message": msg}
        return app.task(name=name, ignore_result=ignore_result)(task)
    return wrap


def _send(alerts, dedupe: str | None = None) -> None:
    from .alerts import emit

    if not alerts:
        return
    if dedupe:
        import redis

        from shared_models.db import redis_url

        client = redis.Redis.from_url(redis_url())
        if not client.set(f"shadow:alerted:{dedupe}", 1, nx=True, ex=7 * 86400):
            return
    emit(alerts)


@when_enabled("shadow.record_trades")
def record_trades(model: str, trades: list[dict]) -> dict:
    """Store a batch of closed trades (bad rows dead-lettered, never failing the batch); enqueue
    ``shadow.evaluate`` at each planned look crossed."""
    from .service import record_trades as record

    res = record(model, trades, source="shadow.record_trades")
    if res.evaluate:
        evaluate.delay(res.model)
    return {**res.as_dict(), "evaluation_enqueued": res.evaluate}


@when_enabled("shadow.evaluate")
def evaluate(challenger: str) -> dict:
    """Evaluate a challenger at its latest planned look; promote/reject per the decision."""
    from shared_models.db import unit_of_work

    from .decisions import evaluate_challenger
    from .registry import ShadowError

    try:
        with unit_of_work() as session:
            out = evaluate_challenger(session, challenger, get_settings())
    except ShadowError as exc:  # the champion changed under us: a later look re-evaluates
        return {"decision": "REFUSED", "message": str(exc)}
    _send(out.alerts)
    return out.as_dict()


@when_enabled("shadow.evaluate_all", ignore_result=True)
def evaluate_all() -> dict:
    """Beat safety net: enqueue an evaluation for every challenger (a look missed by a lost
    enqueue is picked up here; evaluations already stored are no-ops)."""
    from sqlalchemy import select

    from shared_models.db import unit_of_work
    from shared_models.models.shadow import ShadowModel

    with unit_of_work() as session:
        names = list(session.scalars(select(ShadowModel.name).where(ShadowModel.role == "challenger")))
    for name in names:
        evaluate.delay(name)
    return {"enqueued": len(names)}


@when_enabled("shadow.monitor")
def monitor() -> dict:
    """The rollback monitor of a freshly promoted champion (run by beat)."""
    from shared_models.db import unit_of_work

    from .decisions import monitor_champion
    from .registry import ShadowError

    try:
        with unit_of_work() as session:
            out = monitor_champion(session, get_settings())
    except ShadowError as exc:
        return {"decision": "REFUSED", "message": str(exc)}
    dedupe = None
    if out.decision == "DEGRADED":
        mon = (out.evaluation or {}).get("monitor", {})
        dedupe = f"degradation:{out.alerts[0].model}:{mon.get('looks_done')}"
    _send(out.alerts, dedupe)
    return out.as_dict()
