"""`quantpipe demo --once`: every pool doing real work on the shipped data, then one line per pool.

The pools run as ``quantpipe up`` runs them (``cli.runner``: one worker per pool and beat, as
children; their logs go to QUANTPIPE_LOG_DIR), and the demo's sources (``cli.demo.sources``)
drive them through their public interfaces. ``up --demo`` runs the same sources as a child
(``quantpipe demo --feed``) until Ctrl+C.
"""

from __future__ import annotations

import os
import threading
import time

import click

from cli.console import console, pass_settings

DEMO_ENV = {"SHADOW_MAX_TRADES": "1000"}  # a decision (promotion or rejection) by 1,000 trades per challenger
POOL_WAIT_SECONDS = 180.0
SETTLE_SECONDS = 60.0


def demo_env() -> dict[str, str]:
    """The demo's settings, each unless the user set it."""
    return {k: v for k, v in DEMO_ENV.items() if k not in os.environ}


def options(f):
    """The sources' options, shared by `demo` and `up --demo`."""
    for opt in reversed([
        click.option("--speed", type=click.FloatRange(0), default=None,
                     help="Replay speed: trading days per second (a day is one bar of every symbol, "
                          "sent as one patterns.on_bars task); 0 = as fast as the pool takes them "
                          "(default: 5 for demo --once, 1 under up --demo)."),
        click.option("--symbols", type=click.IntRange(10, 600), default=None,
                     help="Universe size (default: all 504 tickers of data/prices/daily)."),
        click.option("--days", type=click.IntRange(5, 2000), default=250, show_default=True,
                     help="Trading days replayed: the last ones of data/prices (250 = the last year). The "
                          "300 days before them are loaded as history (for speed, not the whole 2012-2021)."),
        click.option("--users", type=click.IntRange(1, 100_000), default=200, show_default=True,
                     help="Simulated users (ingest)."),
        click.option("--events-per-second", type=click.FloatRange(0.1), default=50.0, show_default=True,
                     help="Tracked events per second (dev mode allows 100,000 a day without a licence)."),
    ]):
        f = opt(f)
    return f


def wait_for_pools(app, pools, stop: threading.Event, timeout: float = POOL_WAIT_SECONDS) -> set[str]:
    """Pools with a worker answering a ping (the demo's workers are named ``<pool>@host``)."""
    deadline = time.monotonic() + timeout
    online: set[str] = set()
    while time.monotonic() < deadline and not stop.is_set():
        replies = app.control.ping(timeout=1.0) or []
        online = {name.split("@")[0] for r in replies for name in r}
        if set(pools) <= online:
            break
        stop.wait(1.0)
    return online & set(pools)


def _queues_idle(redis_client, pools) -> bool:
    from workers.routing import queue_depth

    return all(queue_depth(redis_client, p) == 0 for p in pools)


def settle(sources, redis_client, stop: threading.Event, timeout: float = SETTLE_SECONDS) -> None:
    """After the sources stop: wait until the queues are empty and the tracked events are stored."""
    from sqlalchemy import text

    deadline = time.monotonic() + timeout
    ids = sources.users.counts.ids
    while time.monotonic() < deadline and not stop.is_set():
        with sources.engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM ingest_events WHERE event_id = ANY(CAST(:ids AS uuid[]))"),
                                  {"ids": ids}).scalar_one() if ids else 0
        if stored >= len(ids) and _queues_idle(redis_client, ("patterns", "shadow", "ingest")):
            return
        stop.wait(1.0)


def _progress_line(src, started: float) -> str:
    p, d, u, t = src.patterns, src.discovery, src.users.counts, src.trader
    return (f"{time.monotonic() - started:5.0f}s  replay {p.ticks}/{len(src.plan.days)} days  "
            f"events {u.events:,}  discovery {d.scanned}/{d.politicians}  trades {t.sent:,}")


def drive(sources, redis_client, stop: threading.Event, *, minutes: float, once: bool) -> None:
    """Run the sources until done (``once``: replay and scan finished, a shadow decision) or ``minutes``."""
    from .summary import decided

    started = time.monotonic()
    deadline = started + minutes * 60 if minutes > 0 else None
    sources.start()
    with console.status(_progress_line(sources, started)) as status:
        while not stop.is_set():
            if deadline is not None and time.monotonic() > deadline:
                break
            if once and sources.patterns.done and (sources.discovery.done or sources.discovery.error) \
                    and decided(sources.engine, sources.started_at):
                break
            if once and sources.patterns.done and sources.discovery.done and not sources.trader.pending \
                    and _queues_idle(redis_client, ("shadow",)) and time.monotonic() - started > 20:
                break  # everything was sent and evaluated; no decision came (the summary says so)
            status.update(_progress_line(sources, started))
            stop.wait(1.0)


@click.command()
@click.option("--once", is_flag=True, help="Run the pools and the sources to completion, print one line per "
                                           "pool, stop everything; exit 0 only if every pool did work.")
@click.option("--minutes", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Stop the sources after this long (0: no limit).")
@click.option("--feed", is_flag=True, hidden=True, help="Only the sources, until SIGINT/SIGTERM (up --demo's child).")
@click.option("--concurrency", "-c", type=click.IntRange(1, 64), default=None,
              help="Processes per pool (default: QUANTPIPE_CONCURRENCY).")
@options
@pass_settings
def demo(settings, once, minutes, feed, concurrency, speed, symbols, days, users, events_per_second) -> None:
    """Show every pool doing real work on the shipped data (--once: then exit).

    Migrates and loads data/ if needed (the congress disclosures, the S&P 500 and, for speed,
    only the last DAYS + 300 trading days of the 504 tickers), starts the pools as `quantpipe up`
    does (logs in QUANTPIPE_LOG_DIR), then: patterns - the last DAYS of bars replayed as live ticks
    through patterns.on_bars; ingest - USERS with habits through ShadowWatch.track, logins through
    verify_login/confirm_login (a few takeovers); discovery - `scan all`; shadow - a champion and
    two challengers trading the published patterns, trades through shadow.record_trades, a
    promotion or rejection by 1,000 trades (the demo sets SHADOW_MAX_TRADES=1000 unless set).
    Each shipped bar is replayed once per database: a second run replays only newer bars.
    """
    from .run import run_feed, run_once

    kw = dict(speed=(5.0 if once else 1.0) if speed is None else speed, symbols=symbols, days=days, users=users, events_per_second=events_per_second)
    if feed:
        raise SystemExit(run_feed(settings, minutes=minutes, **kw))
    if not once:
        console.print("run `quantpipe demo --once` (a bounded run) or `quantpipe up --demo` (until Ctrl+C)")
        raise SystemExit(2)
    raise SystemExit(run_once(settings, minutes=minutes, concurrency=concurrency, **kw))
