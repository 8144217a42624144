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


def _resolve(session, pid: int | None, name: str | None) -> int:
    from shared_models import discoveries
    from shared_models.models.discovery import Politician

    if pid is not None:
        if session.get(Politician, pid) is None:
            fail(f"--id: no politician with id {pid}")
        return pid
    found = discoveries.find_politicians(session, name or "")
    if not found:
        fail(f"--name: no politician matches {name!r}")
    if len(found) > 1:
        fail(f"--name: {name!r} matches {len(found)} politicians: "
             + ", ".join(f"{p.full_name} (id {p.id})" for p in found[:10]))
    return found[0].id


@scan.command("politician")
@click.option("--id", "pid", type=int, help="Politician id.")
@click.option("--name", help="Name or part of it (any recorded spelling).")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for the worker.")
@pass_settings
def scan_politician(settings, pid: int | None, name: str | None, timeout: float) -> None:
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
    """Scan every politician as a Celery group, then the network and experiments (chord callback)."""
    from workers.discovery import tasks

    ids = tasks.politician_ids()
    if not ids:
        fail("no politicians loaded: run `quantpipe data load-congress data/congress` first")
    result = tasks.scan_chord(ids).apply_async()
    group = result.parent
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("politicians", total=len(ids))
        while not group.ready():
            if time.monotonic() > deadline:
                fail(f"timed out after {timeout:.0f}s; the scan continues on the workers (chord {result.id})")
            bar.update(task, completed=group.completed_count())
            time.sleep(0.5)
        bar.update(task, completed=len(ids))
        net = bar.add_task("network + experiments", total=1)
        out = result.get(timeout=max(1.0, deadline - time.monotonic()))
        bar.update(net, completed=1)
    _print_dict("scan all", out)


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


def _findings_table(title: str, rows: list[dict], score: str) -> Table:
    table = Table(title=title)
    for col in ("id", "politician", "kind", score, "confidence", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["id"]), str(r.get("politician") or "-"), r["kind"], f"{r['score']:.2f}",
                      f"{r['confidence']:.2f}", r["description"])
    return table


@discoveries.command("recent")
@click.option("--min-strength", type=float, default=None, help="Default: DISCOVERY_MIN_STRENGTH.")
@click.option("--days", type=int, default=30, show_default=True, help="Discovered within this many days.")
@click.option("--limit", type=int, default=30, show_default=True)
@pass_settings
def recent(settings, min_strength: float | None, days: int, limit: int) -> None:
    """Pattern and network discoveries above a strength threshold, newest first."""
    from shared_models import discoveries as d
    from shared_models.db import session_factory

    threshold = settings.discovery.min_strength if min_strength is None else min_strength
    with session_factory()() as s:
        rows = d.recent_discoveries(s, threshold, days=days, limit=limit)
    console.print(_findings_table(f"discoveries with strength > {threshold}", rows, "strength"))


@discoveries.command("critical")
@click.option("--min-severity", type=float, default=None, help="Default: DISCOVERY_CRITICAL_SEVERITY.")
@click.option("--limit", type=int, default=30, show_default=True)
@pass_settings
def critical(settings, min_severity: float | None, limit: int) -> None:
    """Uninvestigated anomalies with severity at or above the threshold."""
    from shared_models import discoveries as d
    from shared_models.db import session_factory

    threshold = settings.discovery.critical_severity if min_severity is None else min_severity
    with session_factory()() as s:
        rows = d.critical_anomalies(s, threshold, limit=limit)
    console.print(_findings_table(f"uninvestigated anomalies, severity >= {threshold}", rows, "severity"))


@discoveries.command("politician")
@click.argument("name")
@pass_settings
def politician(settings, name: str) -> None:
    """Everything found on one politician (NAME: any part of any recorded spelling)."""
    from shared_models import discoveries as d
    from shared_models.db import session_factory

    with session_factory()() as s:
        pid = _resolve(s, None, name)
        found = d.politician_discoveries(s, pid)
    p = found["politician"]
    console.print(f"[bold]{p['full_name']}[/] ({p['chamber']}, {p['district'] or p['state'] or '-'}; "
                  f"key {p['key']}; id {p['id']})")
    for section, score in (("patterns", "strength"), ("anomalies", "severity"), ("network", "strength")):
        console.print(_findings_table(section, found[section], score))
