"""`quantpipe shadow record-trades FILE`: a CSV of closed trades into the registry, line by line.

The file is read by the pool's reader (``workers.shadow.trade_file``) and recorded by
its public ``service.record_trades`` — the same path as the ``shadow.record_trades``
task. Every line that is not a trade (not UTF-8, a wrong number of values, a bad
field, a trade id re-sent with other values) is reported with its line number and
why, and kept in dead_letters; every good line is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from cli.console import console, fail, pass_settings

CHUNK = 2000
SHOWN = 20


@click.command("record-trades")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", default=None, help="Model of every row (else a 'model' column is required).")
@click.option("--evaluate/--no-evaluate", default=True, show_default=True,
              help="Enqueue shadow.evaluate on the workers when a planned look is reached.")
@pass_settings
def record_trades(settings, file: Path, model: str | None, evaluate: bool) -> None:
    """Import closed trades from a CSV file (idempotent: re-importing changes nothing).

    Columns: trade_id, opened_at, closed_at (ISO-8601), return (fraction, 0.012 = +1.2 %),
    optional pnl, shadow (true/false), opportunity_id (the signal both models saw: trades of the
    champion and a challenger on the same one are compared pair by pair) and model. Bad lines
    are reported (line and reason) and kept in dead_letters; the good ones are stored.
    """
    from cli.shadow import user_errors

    with user_errors():
        report = load(file, model, settings)
    _report(file, report)
    if evaluate and report.to_evaluate:
        from workers.app import app

        for name in sorted(report.to_evaluate):
            app.send_task("shadow.evaluate", args=[name])
        console.print(f"evaluation enqueued for {', '.join(sorted(report.to_evaluate))}")


@dataclass
class Report:
    lines: int
    results: list = field(default_factory=list)                         # RecordResult per chunk
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # (line, field, reason)
    to_evaluate: set[str] = field(default_factory=set)


def load(file: Path, model: str | None, settings, progress: bool = True) -> Report:
    """Read ``file`` and record its trades through the pool's public API; every bad line is dead-lettered
    and reported with its line, field and reason. Raises the pool's errors for an unusable file."""
    from rich.progress import Progress

    from workers.shadow import service, trade_file

    source = f"cli:{file.name}"[:100]
    loaded = trade_file.read(file)
    if model is None and "model" not in loaded.columns:
        fail("--model: required when the file has no 'model' column")
    if model is not None:
        service.trades(model, limit=0)                        # a typo in --model fails here, not per line
    groups = loaded.groups(model)
    report = Report(loaded.lines, problems=[(e.line, e.field, e.reason) for e in loaded.errors])
    if loaded.errors:
        service.keep_rejected(model or "?", [{"line": e.line, "field": e.field, "reason": e.reason,
                                              "row": {"file": file.name, "line": e.line, "text": e.raw}}
                                             for e in loaded.errors], source=source)
    with Progress(console=console, transient=True, disable=not progress) as bar:
        task = bar.add_task("recording trades", total=len(loaded.rows))
        for name, batch in groups.items():
            for start in range(0, len(batch), CHUNK):
                chunk = batch[start:start + CHUNK]
                res = service.record_trades(name, [row for _, row in chunk], source=source, settings=settings,
                                            max_reported=None)
                report.problems += [(chunk[r.index][0], r.field, r.reason) for r in res.rejections]
                if res.evaluate:
                    report.to_evaluate.add(name)
                report.results.append(res)
                bar.advance(task, len(chunk))
    report.problems.sort()
    return report


def _report(file: Path, report: Report) -> None:
    from rich.table import Table

    results, problems = report.results, report.problems
    table = Table(title=f"{file.name}: {report.lines} lines")
    for col in ("model", "inserted", "duplicates", "rejected", "total trades"):
        table.add_column(col, justify="right" if col != "model" else "left")
    totals: dict[str, list[int]] = {}
    for r in results:
        t = totals.setdefault(r.model, [0, 0, 0, 0])
        t[0], t[1], t[2], t[3] = t[0] + r.inserted, t[1] + r.duplicates, t[2] + r.rejected, r.total
    for name, (ins, dup, rej, tot) in totals.items():
        table.add_row(name, str(ins), str(dup), f"[red]{rej}[/]" if rej else "0", str(tot))
    console.print(table)
    if problems:
        console.print(f"[red]{len(problems)} line(s) rejected[/]")
        for line, _field, reason in problems[:SHOWN]:
            console.print(f"  line {line}: {reason}", markup=False, soft_wrap=True)
        more = len(problems) - SHOWN
        if more > 0:
            console.print(f"  … and {more} more")
        console.print("[red]rejected lines were kept in dead_letters (pool 'shadow') with the reason[/]")
