"""`quantpipe ingest simulate`: the seed's load test, with the reads an app's pages and logins make.

Seed 000's checklist asks for "Redis cache hit rate > 80 %" and "multi-instance caching works":
both need reads. Each simulated user works in sessions: a session starts with a login
(``verify_login`` + ``confirm_login``, which read the behavioural fingerprint), then every page
reads the profile (``get_profile``, to personalise it) ``--page-reads`` times and tracks one
event. Run several of these processes at once and ``quantpipe ingest stats`` shows the hit rate
of all of them together (the counters live in Redis).
"""

from __future__ import annotations

import random
import time

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .console import console, fail, pass_settings

ENTITIES = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "META", "GOOG", "BRK.B", "JPM", "V", "UNH", "XOM", "AMD",
            "NFLX", "COST", "BTC-USD", "ETH-USD", "SPY", "QQQ", "IWM"]
ACTION_MIX = {"view": 50, "search": 20, "analyze": 10, "alert": 5, "watchlist_add": 7, "watchlist_remove": 2,
              "trade": 6}
SEED_MIX = {"view": 1, "trade": 1, "watchlist": 1}  # seed 000's load test: random.choice(["view", "trade", ...])
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


def _percentiles(samples: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(samples or [0.0]) * 1000.0
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()), "mean": float(a.mean())}


def _login(sw, user: int) -> None:
    ctx = {"ip_address": f"10.{(user >> 8) & 255}.{user & 255}.{1 + user % 250}", "user_agent": UA,
           "device_fingerprint": f"sim-device-{user}"}
    r = sw.verify_login(user, ctx)
    sw.confirm_login(user, r["attempt_id"], True)


@click.command()
@click.option("--users", default=100, show_default=True, type=click.IntRange(1), help="Simulated users.")
@click.option("--events", default=100, show_default=True, type=click.IntRange(1), help="Events per user.")
@click.option("--first-user", default=1, show_default=True, type=click.IntRange(1), help="First user id.")
@click.option("--seed", default=None, type=int, help="Random seed (reproducible load).")
@click.option("--mix", type=click.Choice(["app", "seed"]), default="app", show_default=True,
              help="Actions: an app's mix, or the seed load test's view/trade/watchlist.")
@click.option("--page-reads", default=1, show_default=True, type=click.IntRange(0, 20),
              help="get_profile calls per page (one event per page).")
@click.option("--session-events", default=20, show_default=True, type=click.IntRange(0),
              help="Events per session; each session starts with a login (0: no logins).")
@click.option("--license-key", envvar="INGEST_LICENSE_KEY", default=None, help="Licence key (default: dev mode).")
@click.option("--wait/--no-wait", default=False, show_default=True,
              help="Wait until the ingest workers have committed every event.")
@click.option("--drain", "drain_inline", is_flag=True, help="Drain the stream in this process (no workers needed).")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait with --wait.")
@pass_settings
def simulate(settings, users: int, events: int, first_user: int, seed: int | None, mix: str, page_reads: int,
             session_events: int, license_key: str | None, wait: bool, drain_inline: bool, timeout: float) -> None:
    """Load test: USERS x EVENTS pages, each reading the profile and tracking one event, with a login
    every SESSION-EVENTS events; reports track() and read latency and this process's cache hits."""
    from workers.ingestion.licenses import LicenseError

    from .ingest import _client

    sw = _client(license_key)
    rng = random.Random(seed)
    table_mix = ACTION_MIX if mix == "app" else SEED_MIX
    actions, weights = list(table_mix), list(table_mix.values())
    favourites = {u: rng.sample(ENTITIES, 5) for u in range(first_user, first_user + users)}
    total = users * events
    track_lat: list[float] = []
    read_lat: list[float] = []
    ids: list[str] = []
    logins = 0
    with Progress(TextColumn("[bold]pages"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("pages", total=total)
        started = time.perf_counter()
        try:
            for i in range(total):
                user, nth = first_user + i % users, i // users
                if session_events and nth % session_events == 0:
                    _login(sw, user)
                    logins += 1
                for _ in range(page_reads):
                    t0 = time.perf_counter()
                    sw.get_profile(user)
                    read_lat.append(time.perf_counter() - t0)
                entity = rng.choice(favourites[user]) if rng.random() < 0.8 else rng.choice(ENTITIES)
                action = rng.choices(actions, weights)[0]
                meta = {"sim": True} if action != "watchlist" else {"action": rng.choice(["add", "remove"])}
                t0 = time.perf_counter()
                ids.append(sw.track(user, entity, action, meta))
                track_lat.append(time.perf_counter() - t0)
                if i % 200 == 0:
                    progress.update(task, completed=i + 1)
        except LicenseError as exc:
            fail(f"{exc} after {len(track_lat)} events")
        progress.update(task, completed=total)
        elapsed = time.perf_counter() - started
    table = Table(title=f"{total:,} pages ({users} users x {events}), {logins:,} logins")
    for col in ("call", "per s", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="right" if col != "call" else "left")
    for name, lat in (("track()", track_lat), ("get_profile()", read_lat)):
        if lat:
            p = _percentiles(lat)
            table.add_row(name, f"{len(lat) / elapsed:,.0f}", *(f"{p[k]:.3f}" for k in ("p50", "p95", "p99", "max")))
    console.print(f"track() latency over {total:,} events")
    console.print(table)
    _print_reads(sw.cache)
    _committed(sw, ids, total, wait, drain_inline, timeout)
    sw.close()


def _print_reads(cache) -> None:
    local = getattr(cache, "local", None)
    if local is None:
        return
    s = local.stats()
    console.print(f"cache reads (this process): {s['hits'] + s['misses']:,} - {s['hit_rate']:.1%} hits "
                  f"({s['hits']:,} hits, {s['misses']:,} misses)")
    for kind, k in s["by_kind"].items():
        console.print(f"  {kind:12s} {k['hit_rate']:6.1%} ({k['hits']:,} hits, {k['misses']:,} misses)")


def _committed(sw, ids: list[str], total: int, wait: bool, drain_inline: bool, timeout: float) -> None:
    from sqlalchemy import text

    if drain_inline:
        stats = sw.drain_now(time_budget=timeout)
        console.print(f"drained in-process: {stats.inserted:,} inserted, {stats.duplicates:,} duplicates, "
                      f"{stats.dead_lettered:,} dead-lettered")
    if not (wait or drain_inline):
        return
    deadline = time.monotonic() + timeout
    with sw.engine.connect() as conn:
        while True:
            n = conn.execute(text("SELECT count(*) FROM ingest_events WHERE event_id = ANY(CAST(:ids AS uuid[]))"),
                             {"ids": ids}).scalar_one()
            if n >= total or time.monotonic() > deadline:
                break
            time.sleep(0.25)
    console.print(f"committed: {n:,} of {total:,} simulated events "
                  f"({'all' if n >= total else 'NOT all - are ingest workers running?'})")
    if n < total:
        raise SystemExit(1)
