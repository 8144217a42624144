"""`quantpipe scan` and `quantpipe discoveries` (discovery pool)."""

from __future__ import annotations

import time

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.console import console, fail, pass_settings


@click.group()
def scan() -> None:
    """Run discovery scans of politicians' trades (on the discovery workers)."""


def _resolve(session, pid: str | None, name: str | None) -> str:
    from shared_models import discoveries
    from shared_models.models.discovery import Politician

    if pid is not None:
        try:
            key = discoveries.politician_uuid(pid)
        except ValueError as exc:
            fail(f"--id: {exc}")
        if session.get(Politician, key) is None:
            fail(f"--id: no politician with id {key}")
        return str(key)
    try:
        found = discoveries.find_politicians(session, name or "")
    except ValueError as exc:
        fail(f"--name: {exc}")
    if not found:
        fail(f"--name: no politician matches {name!r}")
    if len(found) > 1:
        fail(f"--name: {name!r} matches {len(found)} politicians: "
             + ", ".join(f"{p.full_name} (id {p.id})" for p in found[:10]))
    return str(found[0].id)


@scan.command("politician")
@click.option("--id", "pid", help="Politician id (UUID).")
@click.option("--name", help="Name or part of it (any recorded spelling).")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for the worker.")
@pass_settings
def scan_politician(settings, pid: str | None, name: str | None, timeout: float) -> None:
    """Scan one politician (cycles, concentration, timing, late disclosure, size, event study)."""
    if (pid is None) == (name is None):
        fail("give exactly one of --id or --name")
    from shared_models.db import session_factory
    from workers.discovery import tasks

    with session_factory()() as s:
        pid = _resolve(s, pid, name)
    with console.status(f"scanning politician {pid} on a discovery worker..."):
        out = tasks.scan_politician.delay(pid).get(timeout=timeout)
    if "error" in out:
        fail(out["error"])
    _print_dict("scan", out)


@scan.command("all")
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds to wait for the whole scan.")
@pass_settings
def scan_all(settings, timeout: float) -> None:
    """Scan every politician on the discovery workers, then the network and experiments.

    The scan is a run recorded in the database: it finishes on the workers even if this
    command stops waiting, and a task lost in Redis is re-sent (discovery.reconcile)."""
    from shared_models.db import session_factory
    from workers.discovery import runs, tasks

    started = tasks.start_scan()
    if not started["politicians"]:
        fail("no politicians loaded: run `quantpipe data load-congress data/congress` first")
    run_id, total = started["run_id"], started["politicians"]
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("politicians", total=total)
        net = None
        while True:
            with session_factory()() as s:
                p = runs.progress(s, run_id)
            bar.update(task, completed=p["done"])
            if p["done"] >= total and net is None:
                net = bar.add_task("network + experiments", total=1)
            if p["finished"]:
                if net is not None:
                    bar.update(net, completed=1)
                break
            if time.monotonic() > deadline:
                fail(f"timed out after {timeout:.0f}s; the scan continues on the workers (run {run_id})")
            time.sleep(0.5)
    _print_dict("scan all", p["summary"] or {})


def _print_dict(title: str, d: dict) -> None:
    table = Table(title=title)
    table.add_column("field")
    table.add_column("value")
    for k, v in d.items():
        table.add_row(str(k), str(v))
    console.print(table)


@click.group()
def discoveries() -> None:
    """Read discovery findings (what the main app sees)."""


def _findings_table(title: str, rows: list[dict], type_column: str, score: str, *, who: bool = True) -> Table:
    """Fits 80 columns: ids, types and scores never wrap; names and descriptions fold."""
    table = Table(title=title)
    table.add_column("id", no_wrap=True)
    if who:
        table.add_column("politician", overflow="fold", max_width=18)
    table.add_column(type_column, no_wrap=True)
    table.add_column(score, no_wrap=True)
    table.add_column("conf.", no_wrap=True)
    table.add_column("description", overflow="fold", ratio=1)
    for r in rows:
        name = r.get("politician_name") or ", ".join(n or "?" for n in r.get("member_names", [])) or "-"
        table.add_row(str(r["id"]), *([name] if who else []), r[type_column], f"{r[score]:.2f}",
                      f"{r['confidence']:.2f}", r["description"])
    return table


def _limits(f):
    f = click.option("--offset", type=click.IntRange(0), default=0, show_default=True, help="Rows to skip.")(f)
    return click.option("--limit", type=click.IntRange(1, 500), default=30, show_default=True,
                        help="Rows to show (at most 500).")(f)


@discoveries.command("recent")
@click.option("--min-strength", type=float, default=None, help="Default: DISCOVERY_MIN_STRENGTH.")
@click.option("--days", type=int, default=30, show_default=True, help="Discovered within this many days.")
@click.option("--by", type=click.Choice(["date", "strength"]), default="date", show_default=True,
              help="Order: newest first (what the main app shows), or strongest first.")
@_limits
@pass_settings
def recent(settings, min_strength: float | None, days: int, by: str, limit: int, offset: int) -> None:
    """Pattern discoveries above a strength threshold (DISCOVERY_MIN_STRENGTH), newest first
    (the main app's order; a scan writes them all at once, so --by strength ranks them)."""
    from shared_models import discoveries as d
    from shared_models.db import session_factory

    threshold = settings.discovery.min_strength if min_strength is None else min_strength
    with session_factory()() as s:
        rows = d.recent_discoveries(s, threshold, days=days, limit=limit, offset=offset, by=by)
    order = "strongest first" if by == "strength" else "newest first; --by strength ranks them"
    console.print(_findings_table(f"discoveries with strength > {threshold} ({order})", rows, "pattern_type",
                                  "strength"))


@discoveries.command("critical")
@click.option("--min-severity", type=float, default=None, help="Default: DISCOVERY_CRITICAL_SEVERITY.")
@_limits
@pass_settings
def critical(settings, min_severity: float | None, limit: int, offset: int) -> None:
    """Uninvestigated anomalies with severity at or above the threshold."""
    from shared_models import discoveries as d
    from shared_models.db import session_factory

    threshold = settings.discovery.critical_severity if min_severity is None else min_severity
    with session_factory()() as s:
        rows = d.critical_anomalies(s, threshold, limit=limit, offset=offset)
    console.print(_findings_table(f"uninvestigated anomalies, severity >= {threshold}", rows, "anomaly_type",
                                  "severity"))


@discoveries.command("networks")
@_limits
@pass_settings
def networks(settings, limit: int, offset: int) -> None:
    """Co-trading pairs and communities, strongest first."""
    from shared_models import discoveries as d
    from shared_models.db import session_factory

    with session_factory()() as s:
        rows = d.network_discoveries(s, limit=limit, offset=offset)
    console.print(_findings_table("co-trading network", rows, "network_type", "strength"))


@discoveries.command("experiments")
@pass_settings
def experiments(settings) -> None:
    """Copy-trading experiments and whether any is deployment-ready."""
    from shared_models import discoveries as d
    from shared_models.db import session_factory

    with session_factory()() as s:
        rows = d.experiments(s, limit=500)
    table = Table(title="model experiments")
    for col in ("model_name", "alpha/yr", "t", "days", "deployment_ready", "experiment_date"):
        table.add_column(col, overflow="fold")
    for e in rows:
        m = e["metrics"]
        table.add_row(e["model_name"], f"{m.get('annualised_alpha', float('nan')):+.3f}",
                      f"{m.get('alpha_t_stat', float('nan')):.2f}", str(m.get("days", "-")),
                      str(e["deployment_ready"]), f"{e['experiment_date']:%Y-%m-%d %H:%M}")
    console.print(table)


@discoveries.command("politician")
@click.argument("name")
@pass_settings
def politician(settings, name: str) -> None:
    """Everything found on one politician (NAME: any part of any recorded spelling)."""
    from shared_models import discoveries as d
    from shared_models.db import session_factory

    with session_factory()() as s:
        pid = _resolve(s, None, name)
        found = d.politician_detail(s, pid, trades_limit=1)
    p = found["politician"]
    console.print(f"[bold]{p['full_name']}[/] ({p['chamber']}, {p['district'] or p['state'] or '-'}; "
                  f"{p['trade_count']} trades; key {p['key']}; id {p['id']})")
    for section, type_column, score in (("patterns", "pattern_type", "strength"),
                                        ("anomalies", "anomaly_type", "severity"),
                                        ("network", "network_type", "strength")):
        console.print(_findings_table(section, found[section], type_column, score, who=section == "network"))
