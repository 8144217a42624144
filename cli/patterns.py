"""`quantpipe patterns`: scan, replay, test-event, monitor, listen."""

from __future__ import annotations

import time

import click

from rich.markup import escape

from cli.console import console, fail, pass_settings

TIER_CHOICES = ["daily", "intraday", "combo", "all"]


def _redis():
    import redis

    from shared_models.db import redis_url

    return redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=5)


def _symbols(value: str | None) -> list[str] | None:
    if not value:
        return None
    out = [s.strip().upper() for s in value.split(",") if s.strip()]
    if not out:
        fail("--symbols: give comma-separated tickers, e.g. AAPL,MSFT")
    return out


def _parse_time(value: str | None, option: str):
    if not value:
        return None
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except ValueError:
        fail(f"{option}: cannot parse {value!r} as a date/time (try 2021-03-01)")
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()


@click.group()
def patterns() -> None:
    """Patterns pool: scan, replay, test events, monitor, listen for backtest jobs."""


@patterns.command()
@click.option("--tier", type=click.Choice(TIER_CHOICES), default="daily", show_default=True,
              help="Which tier to scan (combo needs daily and intraday detections first).")
@click.option("--symbols", help="Comma-separated tickers (default: every stored symbol of the tier).")
@click.option("--since", help="Only bars after this date/time produce detections (default: since the last scan).")
@click.option("--full", is_flag=True, help="Ignore the scan watermark and scan all stored bars.")
@click.option("--wait/--no-wait", default=False, help="Wait for the workers and print what they found.")
@pass_settings
def scan(settings, tier: str, symbols: str | None, since: str | None, full: bool, wait: bool) -> None:
    """Enqueue pattern scans on the patterns workers (one task per symbol and tier).

    Example: quantpipe patterns scan --symbols AAPL,MSFT --since 2021-03-01 --wait
    """
    from rich.progress import Progress
    from rich.table import Table
    from sqlalchemy import select

    from shared_models.db import get_engine
    from shared_models.models import MarketBar
    from workers.patterns.tasks import scan_symbol

    _parse_time(since, "--since")
    tiers = ["daily", "intraday", "combo"] if tier == "all" else [tier]
    wanted = _symbols(symbols)
    jobs = []
    with get_engine().connect() as conn:
        for t in tiers:
            tf = "1min" if t == "intraday" else "1d"
            stored = set(conn.execute(select(MarketBar.symbol).where(MarketBar.timeframe == tf).distinct()).scalars())
            if wanted:
                missing = sorted(set(wanted) - stored)
                if missing and len(tiers) == 1:
                    fail(f"--symbols: no {tf} bars stored for {', '.join(missing)} "
                         "(load them with `quantpipe data load-prices`)")
                jobs += [(s, t) for s in wanted if s in stored]
            else:
                jobs += [(s, t) for s in sorted(stored)]
    if not jobs:
        fail("nothing to scan: no bars stored (run `quantpipe data load-prices data/prices` first)")
    results = []
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("enqueueing scans", total=len(jobs))
        for s, t in jobs:
            results.append(scan_symbol.apply_async((s, t, since, not full), ignore_result=False))
            bar.advance(task)
    symbols_n = len({sym for sym, _ in jobs})
    scope = "all stored bars" if full else (f"bars after {since}" if since else "bars since the last scan")
    console.print(f"enqueued {len(jobs)} scan task(s) on queue [bold]patterns[/]: {symbols_n} symbol(s) x "
                  f"{', '.join(tiers)}, {scope}")
    if not wait:
        console.print("follow them: [bold]quantpipe patterns monitor --watch[/] (events and flows as they publish), "
                      "or re-run with [bold]--wait[/] for each task's result")
        return
    table = Table(title="scan results")
    for col in ("symbol", "tier", "bars", "detected", "new", "published"):
        table.add_column(col, justify="right" if col not in ("symbol", "tier") else "left")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("waiting for workers", total=len(results))
        for r in results:
            try:
                out = r.get(timeout=settings.task_time_limit + 60)
            except Exception as exc:  # noqa: BLE001 - report and go on
                console.print(f"[red]task {r.id} failed: {exc}[/]")
                continue
            table.add_row(out["symbol"], out["tier"], str(out["bars"]), str(out["detected"]), str(out["new"]),
                          str(out["published"]))
            bar.advance(task)
    console.print(table)


@patterns.command()
@click.option("--symbols", required=True, help="Comma-separated tickers to replay.")
@click.option("--timeframe", type=click.Choice(["1d", "1min"]), default="1min", show_default=True)
@click.option("--start", help="First bar time (default: the first stored).")
@click.option("--end", help="Last bar time (default: the last stored).")
@click.option("--speed", type=float, default=60.0, show_default=True,
              help="Playback speed: 60 = one minute of market time per second; 0 = as fast as possible.")
@click.option("--inline", is_flag=True, help="Run the live path in this process instead of on the workers.")
@pass_settings
def replay(settings, symbols: str, timeframe: str, start: str | None, end: str | None, speed: float,
           inline: bool) -> None:
    """Replay stored bars as if they arrived live (each bar goes through the live path).

    Detections are keyed by bar time, so replaying a period twice publishes nothing twice.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from shared_models.db import get_engine
    from workers.patterns import replay as rp

    if speed < 0:
        fail("--speed: must be >= 0")
    engine = get_engine()
    frame = rp.stored_bars(engine, _symbols(symbols), timeframe, _parse_time(start, "--start"),
                           _parse_time(end, "--end"))
    if frame.empty:
        fail("no stored bars match (check --symbols/--timeframe/--start/--end)")
    published = 0
    redis_client = _redis() if inline else None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console) as bar:
        task = bar.add_task("replaying", total=len(frame))
        for symbol, b in rp.feed(frame, speed):
            if inline:
                from workers.patterns.scanning import ingest_bar

                published += ingest_bar(engine, redis_client, symbol, timeframe, b,
                                        settings.patterns.pattern_ttl_hours).published
            else:
                from workers.patterns.tasks import on_bar

                on_bar.delay(symbol, timeframe, b)
            bar.advance(task)
    console.print(f"replayed {len(frame)} bar(s)" + (f", published {published} event(s)" if inline else
                                                      " (enqueued on queue patterns)"))


@patterns.command(name="test-event")
@click.option("--symbol", default="TEST", show_default=True)
@click.option("--pattern", default="Doji", show_default=True)
@click.option("--confidence", type=click.FloatRange(0, 1), default=0.85, show_default=True)
@click.option("--tier", type=click.Choice(["daily", "intraday", "combo"]), default="daily", show_default=True)
@pass_settings
def test_event(settings, symbol: str, pattern: str, confidence: float, tier: str) -> None:
    """Publish one test pattern event through the real path (detection, outbox, log) and show it.

    The event is what a consumer receives on tickstock.events.patterns; its flow can be
    followed with `quantpipe patterns monitor`.
    """
    from datetime import datetime, timezone

    from rich.table import Table
    from sqlalchemy import text

    from shared_models.bars import BarError, check_symbol
    from shared_models.db import get_engine
    from workers.patterns.detection import Detection
    from workers.patterns.live_path import publish_detections
    from workers.patterns.publisher import CHANNEL

    try:
        symbol = check_symbol(symbol)
    except BarError as exc:
        fail(f"--symbol: {escape(exc.reason)}")
    engine, client = get_engine(), _redis()
    try:
        client.ping()  # connected before the log row, so the publish does not wait for it
    except Exception:  # noqa: BLE001 - the event is still kept in the outbox and relayed later
        pass
    det = Detection(symbol, pattern, tier, datetime.now(timezone.utc), confidence, 100.0, 0.0, 1000, 0,
                    {"test": True})
    out = publish_detections(engine, client, [det], settings.patterns.pattern_ttl_hours)
    flow_id = out.new[0][1]
    if out.error:
        fail(f"Redis unavailable: the event is kept in the outbox and the relay publishes it when Redis is "
             f"back (flow_id {flow_id}): {escape(out.error)}")
    with engine.connect() as conn:
        payload, logged, sent = conn.execute(text(
            "SELECT o.payload, extract(epoch FROM i.timestamp), extract(epoch FROM o.sent_at) FROM pattern_outbox o "
            "JOIN integration_events i ON i.flow_id = o.flow_id AND i.checkpoint = 'PATTERN_PUBLISHED' "
            "WHERE o.flow_id = :f"), {"f": flow_id}).one()
    d = payload["data"]
    table = Table(title=f"published on {CHANNEL}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in (("symbol", d["symbol"]), ("pattern", d["pattern"]), ("confidence", d["confidence"]),
                 ("tier / timeframe", f"{d['tier']} / {d['timeframe']}"),
                 ("bar time (data.timestamp)", datetime.fromtimestamp(d["timestamp"], timezone.utc).isoformat()),
                 ("subscribers reached", out.subscribers),
                 ("log row -> publish", f"{(float(sent) - float(logged)) * 1000:.1f} ms")):
        table.add_row(k, str(v))
    console.print(table)
    console.print("follow its flow: quantpipe patterns monitor")
    console.print(f"flow_id {flow_id}")


@patterns.command()
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Refresh period with --watch.")
@click.option("--limit", type=int, default=10, show_default=True, help="Recent flows to show.")
def monitor(watch: bool, interval: float, limit: int) -> None:
    """Producer heartbeat age, events per minute, outbox backlog and recent flows with latency."""
    from rich.live import Live

    from shared_models.db import get_engine

    engine, r = get_engine(), _redis()
    if not watch:
        console.print(_monitor_view(engine, r, limit))
        return
    try:
        with Live(_monitor_view(engine, r, limit), console=console, refresh_per_second=4) as live:
            while True:
                time.sleep(interval)
                live.update(_monitor_view(engine, r, limit))
    except KeyboardInterrupt:
        pass


def _monitor_view(engine, redis_client, limit: int):
    from rich.console import Group
    from rich.table import Table
    from sqlalchemy import text

    from workers.patterns.liveness import heartbeat_age, producer_metrics

    try:
        age = heartbeat_age(redis_client)
        age_txt = "never" if age is None else f"{age:.1f} s" + (" [red](offline > 30 s)[/]" if age > 30 else "")
    except Exception as exc:  # noqa: BLE001 - show, don't crash the monitor
        age_txt = f"[red]Redis unavailable: {exc}[/]"
    m = producer_metrics(engine)
    head = Table(title="patterns producer")
    for col in ("heartbeat age", "detections", "events/min", "outbox unsent", "last pattern"):
        head.add_column(col, justify="right")
    last = "-" if m["last_pattern_time"] is None else time.strftime("%H:%M:%S", time.gmtime(m["last_pattern_time"]))
    head.add_row(age_txt, str(m["patterns_detected"]), str(m["events_last_minute"]), str(m["outbox_unsent"]), last)
    flows = Table(title="recent flows (pattern_flow_analysis)")
    for col in ("start (UTC)", "symbol", "pattern", "conf", "checkpoints", "latency ms", "path"):
        flows.add_column(col)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT start_time, symbol, pattern_name, confidence, checkpoints_logged, "
                                 "total_latency_ms, flow_path FROM pattern_flow_analysis "
                                 "ORDER BY start_time DESC LIMIT :n"), {"n": limit}).all()
    for st, sym, pat, conf, n, lat, path in rows:
        flows.add_row(st.strftime("%H:%M:%S.%f")[:-3], sym or "-", pat or "-", str(conf), str(n), str(lat),
                      " > ".join(path))
    return Group(head, flows)


@patterns.command()
@pass_settings
def listen(settings) -> None:
    """Listen on tickstock.jobs.backtest / tickstock.jobs.cancel and enqueue backtests (run one per deployment).

    Pub/sub keeps no backlog, so this is a long-running process, not a beat poll. Stop with Ctrl-C.
    """
    import signal

    from shared_models.db import get_engine, use_pool
    from workers.patterns.listener import listen as run
    from workers.patterns.tasks import backtest

    use_pool("patterns")  # a patterns process: the patterns role, like its workers
    stop = {"now": False}

    def _stop(*_):
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    console.print("listening on tickstock.jobs.backtest, tickstock.jobs.cancel (Ctrl-C to stop)")
    run(get_engine(), _redis(), lambda job_id: backtest.delay(job_id), lambda: stop["now"],
        on_action=lambda ch, action: console.print(f"{ch}: {action}"))
