"""`quantpipe shadow record-trades FILE`: a CSV of closed trades into the registry, line by line.

The file is read by the pool's reader (``workers.shadow.trade_file``) and recorded by
its public ``service.record_trades`` — the same path as the ``shadow.record_trades``
task. Every line that is not a trade (not UTF-8, a wrong number of values, a bad
field, a trade id re-sent with other values) is reported with its line number and
why, and kept in dead_letters; every good line is stored.
"""

from __future__ import annotations

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
    from rich.progress import Progress

    from cli.shadow import user_errors
    from workers.shadow import service, trade_file

    source = f"cli:{file.name}"[:100]
    with user_errors():
        loaded = trade_file.read(file)
        if model is None and "model" not in loaded.columns:
            fail("--model: required when the file has no 'model' column")
        if model is not None:
            service.trades(model, limit=0)                    # a typo in --model fails here, not per line
        groups = loaded.groups(model)
    problems = [(e.line, e.reason) for e in loaded.errors]
    if loaded.errors:
        service.keep_rejected(model or "?", [{"line": e.line, "field": e.field, "reason": e.reason,
                                              "row": {"file": file.name, "line": e.line, "text": e.raw}}
                                             for e in loaded.errors], source=source)
    results, to_evaluate = [], set()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("recording trades", total=len(loaded.rows))
        for name, batch in groups.items():
            for start in range(0, len(batch), CHUNK):
                chunk = batch[start:start + CHUNK]
                res = service.record_trades(name, [row for _, row in chunk], source=source, settings=settings)
                problems += [(chunk[r.index][0], r.reason) for r in res.rejections]
                if res.evaluate:
                    to_evaluate.add(name)
                results.append(res)
                progress.advance(task, len(chunk))
    _report(file, loaded, results, problems)
    if evaluate and to_evaluate:
        from workers.app import app

        for name in sorted(to_evaluate):
            app.send_task("shadow.evaluate", args=[name])
        console.print(f"evaluation enqueued for {', '.join(sorted(to_evaluate))}")


def _report(file: Path, loaded, results, problems) -> None:
    from rich.table import Table

    table = Table(title=f"{file.name}: {loaded.lines} lines")
    for col in ("model", "inserted", "duplicates", "rejected", "total trades"):
        table.add_column(col, justify="right" if col != "model" else "left")
    totals: dict[str, list[int]] = {}
    for r in results:
        t = totals.setdefault(r.model, [0, 0, 0, 0])
        t[0], t[1], t[2], t[3] = t[0] + r.inserted, t[1] + r.duplicates, t[2] + r.rejected, r.total
    for name, (ins, dup, rej, tot) in totals.items():
        table.add_row(name, str(ins), str(dup), f"[red]{rej}[/]" if rej else "0", str(tot))
    console.print(table)
    unread = len(loaded.errors)
    if unread:
        console.print(f"[red]{unread} line(s) could not be read as a trade row[/]")
    # every result row's rejections are reported (the pool caps what it returns at 100 per chunk)
    hidden = sum(r.rejected - len(r.rejections) for r in results)
    if problems or hidden:
        for line, reason in sorted(problems)[:SHOWN]:
            console.print(f"  line {line}: {reason}", markup=False, soft_wrap=True)
        more = len(problems) + hidden - min(len(problems), SHOWN)
        if more > 0:
            console.print(f"  … and {more} more")
        console.print("[red]rejected lines were kept in dead_letters (pool 'shadow') with the reason[/]")
