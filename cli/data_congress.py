"""`quantpipe data load-congress` (discovery pool)."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.console import console, fail, pass_settings


@click.command(name="load-congress")
@click.argument("paths", nargs=-1, type=click.Path(exists=True), required=True)
@click.option("--show-rejects", type=click.IntRange(0), default=20, show_default=True,
              help="List this many rejected rows (file, row, field, reason); all are kept in dead_letters.")
@pass_settings
def load_congress(settings, paths: tuple[str, ...], show_rejects: int) -> None:
    """Load congressional trade disclosures from PATHS (files or directories, e.g. data/congress).

    Politicians are merged across files and spellings; exact duplicate rows are dropped;
    a bad row is rejected with the field and the reason (kept in dead_letters) and the
    others are loaded; only a file that cannot be read at all stops the load (nothing is
    written then). Re-loading is idempotent.
    """
    from loaders.congress import CongressFileError, read_congress, write_congress
    from shared_models.db import get_engine

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            data = read_congress(paths, progress)
        except CongressFileError as exc:
            fail(str(exc))
        report = write_congress(get_engine(), data, progress)
    table = Table(title="load-congress")
    for col in ("source", "rows read", "duplicates dropped"):
        table.add_column(col)
    for source, n in sorted(report.rows_read.items()):
        table.add_row(source, str(n), str(report.duplicates.get(source, 0)))
    console.print(table)
    rejects = Table(title=f"rejected rows ({report.total_rejected}, kept in dead_letters)")
    for col in ("source", "reason", "rows"):
        rejects.add_column(col)
    for (source, code), n in sorted(report.rejected.items()):
        rejects.add_row(source, code, str(n))
    console.print(rejects)
    _print_rejects(data.rejects, show_rejects)
    console.print(f"trades valid: {report.trades_valid}, newly inserted: {report.trades_inserted}; "
                  f"politicians: {report.politicians}")


def _printable(text: str, limit: int = 200) -> str:
    """Shown as is when printable; control characters, NUL and undecodable bytes escaped."""
    text = text if len(text) <= limit else text[:limit] + "…"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _print_rejects(rejects: list, limit: int) -> None:
    """Which row and why: one line each, e.g. ``house line 7: amount: cannot parse amount 'x'``."""
    for r in rejects[:limit]:
        console.print(escape(_printable(f"{r.source} {r.where}: {r.field}: {r.detail} ({r.code})")),
                      soft_wrap=True)
    if len(rejects) > limit:
        console.print(f"… and {len(rejects) - limit} more rejected rows (--show-rejects N, or the "
                      f"dead_letters table, source 'load-congress:<file>')")
