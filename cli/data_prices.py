"""`quantpipe data load-prices` (patterns pool)."""

from __future__ import annotations

import click

from rich.markup import escape

from cli.console import console, err_console, fail, pass_settings


@click.command(name="load-prices")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--symbols", help="Comma-separated tickers to load (default: every file found).")
@pass_settings
def load_prices(settings, paths: tuple[str, ...], symbols: str | None) -> None:
    """Load price CSVs (files or directories) into market_bars.

    Recognises daily (`data/prices/daily/*.csv.gz`), intraday (`*_1min.csv.gz`)
    and benchmark (`GSPC.csv.gz`) layouts by their header. Daily OHLC are
    split-adjusted by adjusted_close/close. Bad bars are rejected, counted per
    reason and kept in dead_letters. Loading twice is harmless (upsert).

    Example: quantpipe data load-prices data/prices --symbols AAPL,MSFT,GSPC
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from shared_models.db import get_engine
    from loaders.prices import FileFailure, PriceFileError, discover_price_files, symbol_of
    from loaders.prices import load_prices as load

    if not paths:
        fail("give at least one file or directory, e.g. `quantpipe data load-prices data/prices`")
    try:
        files = discover_price_files(paths)
    except PriceFileError as exc:
        fail(escape(str(exc)))
    if symbols:
        wanted = {s.strip().upper() for s in symbols.split(",") if s.strip()}
        files = [f for f in files if _symbol_or_none(symbol_of, f) in wanted]
    if not files:
        fail("no price files matched")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("loading prices", total=len(files))

        def step(fr) -> None:
            if isinstance(fr, FileFailure):
                bar.update(task, advance=1, description=f"[red]refused {fr.path}[/]")
            else:
                bar.update(task, advance=1, description=f"loaded {fr.symbol} ({fr.timeframe})")

        try:
            report = load(get_engine(), files, progress=step)
        except PriceFileError as exc:
            fail(escape(str(exc)))
    table = Table(title="load-prices")
    for col in ("files", "symbols", "rows read", "bars loaded", "rejected"):
        table.add_column(col, justify="right")
    table.add_row(str(len(report.files)), str(len(report.symbols)), f"{report.rows:,}", f"{report.loaded:,}",
                  f"{sum(report.rejected.values()):,}")
    console.print(table)
    if report.rejected:
        reasons = Table(title="rejected bars (kept in dead_letters)")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        for reason, n in sorted(report.rejected.items(), key=lambda kv: -kv[1]):
            reasons.add_row(reason, str(n))
        console.print(reasons)
    if report.failed:
        for f in report.failed:
            err_console.print(f"[red]error:[/] {escape(f.error)}")
        fail(f"{len(report.failed)} file(s) could not be read as prices (kept in dead_letters); "
             f"{len(report.files)} loaded")


def _symbol_or_none(symbol_of, path):
    from loaders.prices import PriceFileError

    try:
        return symbol_of(path)
    except PriceFileError:
        return None
