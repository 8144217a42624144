"""`quantpipe ingest`: behavioural-intelligence operations (load simulation, stats, drain)."""

from __future__ import annotations

import click
from rich.table import Table

from .console import console, fail, pass_settings


def _client(license_key: str | None):
    from shadowwatch import ShadowWatchSync

    try:
        return ShadowWatchSync(license_key=license_key)
    except Exception as exc:  # noqa: BLE001 - reported to the operator
        fail(f"cannot start ShadowWatch: {exc}")


def _rate(c: dict) -> str:
    return f"{c['hit_rate']:.1%} ({c['hits']:,} hits, {c['misses']:,} misses)"


def _limit(limit: int | None) -> str:
    return "unlimited" if limit is None else f"{limit:,}"


@click.group()
def ingest() -> None:
    """Ingest pool: simulate load, show stats, drain the event stream."""


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
                 ("cache hit rate (all instances)", _rate(s["cache"])),
                 *((f"  {kind}", _rate(k)) for kind, k in s["cache"].get("by_kind", {}).items()),
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


from .ingest_logins import simulate_logins  # noqa: E402  (own modules: the load and login simulations)
from .ingest_sim import simulate  # noqa: E402

ingest.add_command(simulate)
ingest.add_command(simulate_logins)
