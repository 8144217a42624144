"""The demo's data: the shipped disclosures, the S&P 500 and a recent slice of the daily bars.

Loading all 1.14 M daily bars takes minutes, so the demo stores only a *history* of the
universe (``history`` trading days, enough for SMA200's window) and keeps the following
``replay`` trading days (the last year of ``data/prices`` by default) in memory: those are
played as live ticks through ``patterns.on_bars``, so the patterns pool stores and detects them
itself. Everything goes in through the loaders (``loaders.prices``, ``loaders.congress``), as
``quantpipe data load-*`` does. A second run stores nothing twice and replays only the bars
newer than the ones already stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine, func, select

DATA = Path(__file__).resolve().parents[2] / "data"


@dataclass
class Plan:
    """What the replay plays: per symbol its bars after the stored ones, and the trading days."""

    bars: dict[str, pd.DataFrame] = field(default_factory=dict)   # ts, open, high, low, close, volume
    days: list[pd.Timestamp] = field(default_factory=list)
    ticks: dict[pd.Timestamp, dict[str, dict]] = field(default_factory=dict)
    stored_bars: int = 0                                          # daily bars this run loaded
    politicians: int = 0

    @property
    def symbols(self) -> list[str]:
        return sorted(self.bars)

    def build(self) -> "Plan":
        """{day: {symbol: bar}} in the live path's JSON form (epoch ts, floats)."""
        for sym, frame in self.bars.items():
            for r in frame.itertuples(index=False):
                self.ticks.setdefault(r.ts, {})[sym] = {
                    "ts": r.ts.timestamp(), "open": float(r.open), "high": float(r.high), "low": float(r.low),
                    "close": float(r.close), "volume": float(r.volume)}
        self.days = sorted(self.ticks)
        return self


def _progress(console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def universe(data: Path, limit: int | None) -> list[Path]:
    files = sorted((data / "prices" / "daily").glob("*.csv.gz"))
    if limit:
        step = max(1, len(files) // limit)
        files = files[::step][:limit]  # spread over the alphabet, not the first N
    return files


def _stored(engine: Engine, symbols: list[str]) -> dict[str, pd.Timestamp]:
    from shared_models.models import MarketBar as b

    with engine.connect() as conn:
        rows = conn.execute(select(b.symbol, func.max(b.ts)).where(b.timeframe == "1d", b.symbol.in_(symbols))
                            .group_by(b.symbol)).all()
    return {s: pd.Timestamp(t) for s, t in rows}


def load_congress(engine: Engine, data: Path, console) -> int:
    """Politicians stored; the disclosures are loaded first when none are."""
    from shared_models.models.discovery import Politician

    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(Politician)).scalar_one()
    if n:
        return int(n)
    from loaders.congress import read_congress, write_congress

    with _progress(console) as bar:
        tasks: dict[str, int] = {}

        def step(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"congress: {stage}", total=total)
            bar.update(tasks[stage], completed=done, total=total)

        quiet = logging.getLogger("shared_models.dead_letters")
        level, quiet.level = quiet.level, logging.ERROR  # counted below instead of one line per reject
        try:
            report = write_congress(engine, read_congress([str(data / "congress")], step), step)
        finally:
            quiet.setLevel(level)
    console.print(f"loaded congress disclosures: {report.trades_valid:,} trades, {report.politicians} "
                  f"politicians ({report.total_rejected:,} rows rejected, kept in dead_letters)")
    return int(report.politicians)


def load_benchmark(engine: Engine, data: Path, console) -> None:
    """The S&P 500 index (abnormal returns of the discovery pool's event study)."""
    if _stored(engine, ["GSPC"]):
        return
    from loaders.prices import load_prices

    report = load_prices(engine, [data / "prices" / "benchmark" / "GSPC.csv.gz"])
    console.print(f"loaded the S&P 500 index: {report.loaded:,} bars")


def prepare_prices(engine: Engine, data: Path, console, *, symbols: int | None, history: int,
                   replay: int) -> Plan:
    """Store each symbol's history window (if not stored yet) and keep the replay window in memory."""
    from loaders.prices import read_price_file, write_price_frame

    files = universe(data, symbols)
    frames = {}
    with _progress(console) as bar:
        task = bar.add_task("reading daily prices", total=len(files))
        for path in files:
            pf = read_price_file(path)
            frames[pf.symbol] = pf
            bar.advance(task)
    calendar = sorted({t for pf in frames.values() for t in pf.bars["ts"]})
    cut = calendar[-replay - 1]
    first = calendar[max(0, len(calendar) - replay - history - 1)]
    stored = _stored(engine, list(frames))
    plan = Plan()
    with _progress(console) as bar:
        task = bar.add_task(f"storing {history} days of history", total=len(frames))
        for sym, pf in frames.items():
            have = stored.get(sym)
            if have is None or have < cut:
                window = pf.bars[(pf.bars["ts"] >= first) & (pf.bars["ts"] <= cut)].reset_index(drop=True)
                raw = engine.raw_connection()
                try:
                    plan.stored_bars += write_price_frame(raw, type(pf)(pf.path, pf.symbol, pf.timeframe, window,
                                                                        pf.rejected.iloc[0:0]))
                    raw.commit()
                finally:
                    raw.close()
                have = max(have, cut) if have is not None else cut
            rest = pf.bars[pf.bars["ts"] > have]
            if len(rest):
                plan.bars[sym] = rest[["ts", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
            bar.advance(task)
    plan.build()
    if plan.stored_bars:
        console.print(f"stored {plan.stored_bars:,} daily bars of {len(frames)} symbols "
                      f"({first:%Y-%m-%d} .. {cut:%Y-%m-%d})")
    return plan


def ensure_loaded(engine: Engine, console, *, data: Path = DATA, symbols: int | None = None, history: int = 300,
                  replay: int = 250) -> Plan:
    plan = prepare_prices(engine, data, console, symbols=symbols, history=history, replay=replay)
    load_benchmark(engine, data, console)
    plan.politicians = load_congress(engine, data, console)
    return plan
