"""Celery tasks of the patterns pool: thin bodies that call the pool's pure logic.

All tasks take ids and plain JSON values and are idempotent (detection key, outbox
``sent_at``, upserted bars), so acks_late redelivery and retries are safe.
"""

from __future__ import annotations

import functools
from datetime import datetime

from celery.signals import worker_ready, worker_shutdown

from workers.app import app
from workers.ping import ping_task
from workers.retention import prune_task


@functools.lru_cache(maxsize=1)
def _redis():
    import redis

    from shared_models.db import redis_url

    return redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=5)


def _engine():
    from shared_models.db import get_engine

    return get_engine()


def _settings():
    from shared_models.settings import get_settings

    return get_settings().patterns


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    import pandas as pd

    ts = pd.Timestamp(value)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()


def _dead_letter(source: str, exc, payload) -> None:
    from shared_models.dead_letters import Letter

    from .live_path import keep_dead_letters

    keep_dead_letters(_engine(), [Letter(source, str(exc), payload, exc.field)])


ping = ping_task("patterns")
prune = prune_task("patterns")


@app.task(name="patterns.scan", ignore_result=False)
def scan(symbols: list[str] | None = None, tier: str = "daily", since: str | None = None,
         incremental: bool = True) -> dict:
    """Fan out one ``patterns.scan_symbol`` per symbol (all stored symbols of the tier by default)."""
    from sqlalchemy import select

    from shared_models.models import MarketBar

    from .detection import TIERS, TIMEFRAME_OF_TIER

    if tier not in TIERS:
        raise ValueError(f"tier: {tier!r} is not one of {', '.join(TIERS)}")
    if not symbols:
        tf = TIMEFRAME_OF_TIER.get(tier, "1d")
        with _engine().connect() as conn:
            symbols = list(conn.execute(select(MarketBar.symbol).where(MarketBar.timeframe == tf).distinct()
                                        .order_by(MarketBar.symbol)).scalars())
    for symbol in symbols:
        scan_symbol.delay(symbol, tier, since, incremental)
    return {"tier": tier, "symbols": len(symbols)}


@app.task(name="patterns.scan_symbol", ignore_result=False)
def scan_symbol(symbol: str, tier: str = "daily", since: str | None = None, incremental: bool = True) -> dict:
    """Detect, persist and publish one symbol's patterns (one transaction)."""
    from .scanning import scan_symbol as run

    from shared_models.bars import check_symbol

    return run(_engine(), _redis(), check_symbol(symbol), tier, _since(since), incremental,
               _settings().pattern_ttl_hours, _settings().first_scan_bars).as_dict()


@app.task(name="patterns.on_bar", ignore_result=False)
def on_bar(symbol, timeframe, bar) -> dict:
    """Live path: one new bar in, the patterns it completes published. A bad bar is dead-lettered."""
    from shared_models.bars import BarError

    from .scanning import ingest_bar

    try:
        return ingest_bar(_engine(), _redis(), symbol, timeframe, bar, _settings().pattern_ttl_hours).as_dict()
    except BarError as exc:
        _dead_letter("patterns.on_bar", exc, {"symbol": symbol, "timeframe": timeframe, "bar": bar})
        return {"symbol": str(symbol), "rejected": str(exc), "field": exc.field}


@app.task(name="patterns.on_bars", ignore_result=False)
def on_bars(timeframe, bars) -> dict:
    """Live path for a universe: {symbol: bar} in units of PATTERNS_LIVE_UNIT_SYMBOLS symbols, one
    transaction each; bad bars are dead-lettered in the last one."""
    from shared_models.bars import BarError

    from .scanning import ingest_bars

    try:
        result, rejected = ingest_bars(_engine(), _redis(), timeframe, bars, _settings().pattern_ttl_hours,
                                       dead_letter_source="patterns.on_bars",
                                       unit_symbols=_settings().live_unit_symbols)
    except BarError as exc:  # the call as a whole (timeframe, shape, size): one dead letter
        _dead_letter("patterns.on_bars", exc, {"timeframe": timeframe, "bars": bars})
        return {"rejected": {"*": str(exc)}, "field": exc.field}
    return {**result.as_dict(), "rejected": {k: str(e) for k, e in rejected.items()}}


@app.task(name="patterns.relay_outbox", ignore_result=False)
def relay_outbox(limit: int = 1000) -> dict:
    """Publish events a Redis outage held back; a Redis error retries (autoretry, backoff)."""
    from .publisher import relay_outbox as relay

    return {"published": relay(_engine(), _redis(), limit=limit).published}


@app.task(name="patterns.heartbeat", ignore_result=True, acks_late=False)
def heartbeat() -> dict:
    """One beat by hand (workers beat on their own, see ``_start_liveness``)."""
    from .liveness import beat

    return beat(_engine(), _redis(), _settings().alive_seconds)


_LIVENESS: list = []


@worker_ready.connect
def _start_liveness(**_) -> None:
    """Every patterns worker beats from its main process, outside the task queue (issue #13)."""
    from .liveness import HeartbeatThread

    if not _settings().worker_heartbeat:
        return

    def client():
        import redis

        from shared_models.db import redis_url

        return redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=5)

    thread = HeartbeatThread(_engine, client, _settings().heartbeat_seconds, _settings().alive_seconds)
    thread.start()
    _LIVENESS.append(thread)


@worker_shutdown.connect
def _stop_liveness(**_) -> None:
    while _LIVENESS:
        _LIVENESS.pop().stop()


@app.task(name="patterns.backtest", ignore_result=False)
def backtest(job_id: str) -> dict:
    """Run a stored backtest job over stored bars, publishing progress and results."""
    from .backtest import run_job

    return run_job(_engine(), _redis(), job_id)
