"""`quantpipe ingest`: behavioural-intelligence operations (load simulation, stats, drain)."""

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


def _client(license_key: str | None):
    from shadowwatch import ShadowWatchSync

    try:
        return ShadowWatchSync(license_key=license_key)
    except Exception as exc:  # noqa: BLE001 - reported to the operator
        fail(f"cannot start ShadowWatch: {exc}")


def _limit(limit: int | None) -> str:
    return "unlimited" if limit is None else f"{limit:,}"


def _percentiles(samples: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(samples) * 1000.0
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()), "mean": float(a.mean())}


@click.group()
def ingest() -> None:
    """Ingest pool: simulate load, show stats, drain the event stream."""


@ingest.command()
@click.option("--users", default=100, show_default=True, type=click.IntRange(1), help="Simulated users.")
@click.option("--events", default=100, show_default=True, type=click.IntRange(1), help="Events per user.")
@click.option("--first-user", default=1, show_default=True, type=click.IntRange(1), help="First user id.")
@click.option("--seed", default=None, type=int, help="Random seed (reproducible load).")
@click.option("--license-key", envvar="INGEST_LICENSE_KEY", default=None, help="Licence key (default: dev mode).")
@click.option("--wait/--no-wait", default=False, show_default=True,
              help="Wait until the ingest workers have committed every event.")
@click.option("--drain", "drain_inline", is_flag=True, help="Drain the stream in this process (no workers needed).")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait with --wait.")
@pass_settings
def simulate(settings, users: int, events: int, first_user: int, seed: int | None, license_key: str | None,
             wait: bool, drain_inline: bool, timeout: float) -> None:
    """Load test: USERS x EVENTS track() calls with realistic interests; reports track() latency."""
    from sqlalchemy import text

    from workers.ingestion.licenses import LicenseError

    sw = _client(license_key)
    rng = random.Random(seed)
    actions, weights = list(ACTION_MIX), list(ACTION_MIX.values())
    favourites = {u: rng.sample(ENTITIES, 5) for u in range(first_user, first_user + users)}
    total = users * events
    latencies: list[float] = []
    ids: list[str] = []
    with Progress(TextColumn("[bold]tracking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("track", total=total)
        started = time.perf_counter()
        try:
            for i in range(total):
                user = first_user + i % users
                entity = rng.choice(favourites[user]) if rng.random() < 0.8 else rng.choice(ENTITIES)
                t0 = time.perf_counter()
                ids.append(sw.track(user, entity, rng.choices(actions, weights)[0], {"sim": True}))
                latencies.append(time.perf_counter() - t0)
                if i % 200 == 0:
                    progress.update(task, completed=i + 1)
        except LicenseError as exc:
            fail(f"{exc} after {len(latencies)} events")
        progress.update(task, completed=total)
        elapsed = time.perf_counter() - started
    p = _percentiles(latencies)
    table = Table(title=f"track() latency over {total:,} events ({users} users x {events})")
    for col in ("events/s", "mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="right")
    table.add_row(f"{total / elapsed:,.0f}", *(f"{p[k]:.3f}" for k in ("mean", "p50", "p95", "p99", "max")))
    console.print(table)
    if drain_inline:
        stats = sw.drain_now(time_budget=timeout)
        console.print(f"drained in-process: {stats.inserted:,} inserted, {stats.duplicates:,} duplicates, "
                      f"{stats.dead_lettered:,} dead-lettered")
    if wait or drain_inline:
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


@ingest.command()
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 100), help="Rows in the top tables.")
@click.option("--license-key", envvar="INGEST_LICENSE_KEY", default=None, help="Licence key to report on.")
@pass_settings
def stats(settings, top: int, license_key: str | None) -> None:
    """Users, events, events/user, top entities and users, licence, cache hit rate, dead letters."""
    import warnings

    sw = _client(license_key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = sw.stats(top=top)
    summary = Table(title="ingest", show_header=False)
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    lic = s["license"]
    lic_text = (f"{lic['mode']}" + (f" - {lic['license']['company']} ({lic['license']['tier']})" if lic.get("license")
                                    else "") + (f", {lic['used']:,} of {_limit(lic['limit'])} events used"
                                                if "used" in lic else f": {lic.get('error')}"))
    for k, v in [("users", f"{s['users']:,}"), ("events (all time)", f"{s['events']:,}"),
                 ("raw events kept", f"{s['raw_events']:,}"), ("events per user", f"{s['events_per_user']:,.2f}"),
                 ("stream queued / pending", f"{s['stream']['queued']:,} / {s['stream']['pending']:,}"),
                 ("licence", lic_text),
                 ("cache hit rate", f"{s['cache']['hit_rate']:.1%} ({s['cache']['hits']:,} hits, "
                                    f"{s['cache']['misses']:,} misses)"),
                 ("dead letters", f"{s['dead_letters']:,}")]:
        summary.add_row(k, v)
    console.print(summary)
    for title, rows, cols in (("most-tracked entities", s["top_entities"], ("entity_id", "events", "users")),
                              ("top users", s["top_users"], ("user_id", "events", "entities"))):
        t = Table(title=title)
        for c in cols:
            t.add_column(c, justify="right" if c != "entity_id" else "left")
        for r in rows:
            t.add_row(*(f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in cols))
        console.print(t)


@ingest.command()
@click.option("--timeout", default=60.0, show_default=True, help="Time budget in seconds.")
@pass_settings
def drain(settings, timeout: float) -> None:
    """Drain the event stream into PostgreSQL from this process (what ingest.drain does on a worker)."""
    sw = _client(None)
    s = sw.drain_now(time_budget=timeout)
    console.print(f"{s.batches} batch(es): {s.inserted:,} inserted, {s.duplicates:,} duplicate(s), "
                  f"{s.dead_lettered:,} dead-lettered, {s.reclaimed:,} reclaimed")


from .ingest_logins import simulate_logins  # noqa: E402  (its own module: the login simulation)

ingest.add_command(simulate_logins)
