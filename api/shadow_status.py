"""``GET /shadow/status`` from a snapshot computed once per registry change.

The status is the shadow pool's ``dashboard.overview``: six statements, every
model's returns (for the drawdowns) and Thompson sampling in Python, tens of ms of
CPU holding the GIL per request. Its inputs are three tables (settings are fixed
per process, the sampling is seeded), so each API process keeps the last rendered
body under a *fingerprint* of them, read on every request in one statement:

- ``shadow_models`` (a handful of rows): count and the sum of the rows' ``xmin``,
  so any INSERT, UPDATE or DELETE of a model (promote, rollback, deploy,
  allocation, archive, checkpoint restore) changes it;
- ``shadow_trades`` (append-only: the pool never updates or deletes a trade but
  with its model, and a checkpoint restore rewrites the models too): min(id) and
  max(id), two index probes (a count would scan every trade on every request),
  and the relation's file node (a TRUNCATE gets a new one);
- ``shadow_evaluations`` (never updated; retention deletes old ones of archived
  challengers, a few hundred rows in all): count, min(id), max(id), file node.

A request whose fingerprint is not the stored one recomputes (one request at a
time per process; the others wait and reuse it) in one REPEATABLE READ
transaction that reads the fingerprint first, so the body stored under a
fingerprint is exactly the state it names: whatever committed before a request
began, in any process (a promote through the CLI included), is in its answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import text

from shared_models.settings import get_settings

from .db import async_read, read_session
from .schemas.common import Envelope
from .schemas.shadow import Challenger, Champion, Metrics, Status

FINGERPRINT = text("""
SELECT concat_ws('/',
  (SELECT concat_ws(':', count(*), sum(xmin::text::bigint)) FROM shadow_models),
  (SELECT concat_ws(':', min(id), max(id)) FROM shadow_trades), pg_relation_filenode('shadow_trades'),
  (SELECT concat_ws(':', count(*), min(id), max(id)) FROM shadow_evaluations),
  pg_relation_filenode('shadow_evaluations'))
""")


@dataclass(frozen=True)
class Snapshot:
    fingerprint: str
    body: bytes          # the rendered Envelope[Status]


_snapshot: Snapshot | None = None
_lock: asyncio.Lock | None = None


def _metrics(r: dict) -> Metrics:
    return Metrics(win_rate=r["win_rate"], sharpe_ratio=r["sharpe"], mean_return=r["mean_return"],
                   max_drawdown=r["max_drawdown"])


def envelope(rows: list[dict], settings) -> Envelope[Status]:
    """Seed 004's status envelope from the overview's rows."""
    champ = next((r for r in rows if r["role"] == "champion"), None)
    return Envelope[Status](data=Status(
        champion=None if champ is None else Champion(model_name=champ["name"], model_type=champ["type"],
                                                     metrics=_metrics(champ), trade_count=champ["trades"],
                                                     allocation=champ["allocation"]),
        challengers=[Challenger(model_name=r["name"], model_type=r["type"],
                                promotion_status=r["last_decision"] or "PENDING",
                                promotion_score=float(r["last_score"] or 0.0), trade_count=r["trades"],
                                min_trades=settings.shadow.min_trades, evaluated_at_trades=r["evaluated_at_trades"],
                                metrics=_metrics(r), allocation=r["allocation"], p_best=r["p_best"])
                     for r in rows if r["role"] == "challenger"]))


def compute() -> Snapshot:
    """Fingerprint and overview in one snapshot of the database (a worker thread runs this)."""
    from workers.shadow.dashboard import overview

    settings = get_settings()
    with read_session() as session:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        fingerprint = session.execute(FINGERPRINT).scalar_one()
        rows = overview(session, settings)
        session.rollback()
    return Snapshot(fingerprint, envelope(rows, settings).model_dump_json(by_alias=True).encode())


async def current_fingerprint() -> str:
    async with async_read() as conn:
        return (await conn.execute(FINGERPRINT)).scalar_one()


async def status_body() -> bytes:
    """The status body for the registry as of now: the stored one when its fingerprint still holds."""
    global _snapshot, _lock
    from starlette.concurrency import run_in_threadpool

    fingerprint = await current_fingerprint()
    snap = _snapshot
    if snap is not None and snap.fingerprint == fingerprint:
        return snap.body
    if _lock is None:
        _lock = asyncio.Lock()
    async with _lock:
        snap = _snapshot
        if snap is None or snap.fingerprint != fingerprint:
            snap = await run_in_threadpool(compute)  # may be newer than `fingerprint`: never older
            _snapshot = snap
    return snap.body


def status_sync() -> Status:
    """The same snapshot for sync callers (the dashboard's pages run in worker threads)."""
    global _snapshot
    with read_session() as session:
        fingerprint = session.execute(FINGERPRINT).scalar_one()
        session.rollback()
    snap = _snapshot
    if snap is None or snap.fingerprint != fingerprint:
        snap = _snapshot = compute()
    return Envelope[Status].model_validate_json(snap.body).data
