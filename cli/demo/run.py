"""The two ways the demo runs: ``--once`` (pools + sources + summary) and ``--feed`` (sources only)."""

from __future__ import annotations

import json
import signal
import threading
import time

from cli.console import console

STATUS_KEY = "quantpipe:demo:status"  # the feed's counters, for `up --demo`'s live view


def _servers(settings):
    from shared_models import migrate
    from shared_models.db import get_engine, service_urls

    with console.status("starting servers and migrating…"):
        db_url, redis_url = service_urls()
        migrate.upgrade(db_url)
    return db_url, redis_url, get_engine(db_url)


def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)


def _slack(engine, log_dir):
    """The demo's Slack-format receiver, subscribed to every alert (see slack_sink)."""
    from .slack_sink import SlackSink, subscribe

    sink = SlackSink(log_dir / "slack.log").start()
    subscribe(engine, sink.url)
    console.print(f"alerts: delivered in Slack format to {sink.path}")
    return sink


def _stop_slack(engine, sink) -> None:
    from .slack_sink import unsubscribe

    sink.stop()
    try:
        unsubscribe(engine)
    except Exception as exc:  # noqa: BLE001 - the database may be stopping with the demo
        console.print(f"[yellow]demo: the Slack receiver's subscription stays (removed at the next demo): {exc}[/]")


def _notify_line(sink):
    from .summary import Line

    if not sink.messages:
        return Line("notify", "no alert raised during the run (a promotion, rollback, critical anomaly or "
                              "dead-letter burst raises one)", True)
    first = sink.messages[0].splitlines()[0]
    return Line("notify", f"{len(sink.messages)} alert(s) delivered in Slack format to {sink.path.name}, "
                          f"first: {first}", True)


def _sources(engine, redis_client, redis_url, plan, stop, kw):
    from workers.app import app

    from .sources import Sources

    def report(where, exc):
        console.print(f"[red]{where}: {type(exc).__name__}: {exc}[/]")

    return app, Sources(app, engine, redis_client, plan, speed=kw["speed"], users=kw["users"],
                        events_per_second=kw["events_per_second"], stop=stop, on_error=report, redis_url=redis_url)


def demo_children(settings, concurrency: int | None, log_dir, pools):
    """One worker per pool and beat, as `quantpipe up` runs them, logging to ``log_dir``."""
    from cli.runner import Child, beat_argv, worker_argv

    n = concurrency or settings.worker_concurrency
    children = [Child(p, worker_argv(p, n), log_path=log_dir / f"{p}.log", echo=False) for p in pools]
    children.append(Child("beat", beat_argv(settings.home.resolve()), log_path=log_dir / "beat.log", echo=False))
    return children


def run_once(settings, *, minutes: float, concurrency: int | None, **kw) -> int:
    from cli.runner import Supervisor, child_env, servers_running, stop_started_servers
    from workers.routing import POOLS

    from .command import demo_env, drive, settle, wait_for_pools
    from .data import ensure_loaded
    from .sources import counts
    from .summary import lines

    t0 = time.monotonic()
    had_pg, had_redis = servers_running(settings)
    db_url, redis_url, engine = _servers(settings)
    started = (settings.database_url is None and not had_pg, settings.redis_url is None and not had_redis)
    try:
        plan = ensure_loaded(engine, console, symbols=kw["symbols"], replay=kw["days"])
        log_dir = settings.log_dir.resolve()
        log_dir.mkdir(parents=True, exist_ok=True)
        sink = _slack(engine, log_dir)
        sup = Supervisor(demo_children(settings, concurrency, log_dir, POOLS),
                         {**child_env(settings, db_url, redis_url), **demo_env()})
        redis_client = _redis(redis_url)
        before = counts(engine)
        out: dict = {}
        stop = threading.Event()

        def main() -> None:
            try:
                app, sources = _sources(engine, redis_client, redis_url, plan, stop, kw)
                online = wait_for_pools(app, POOLS, sup.stopping)
                if set(POOLS) - online:
                    out["error"] = f"pools not online: {', '.join(sorted(set(POOLS) - online))} (logs in {log_dir})"
                    return
                console.print(f"pools online ({', '.join(POOLS)}); worker logs in {log_dir}")
                drive(sources, redis_client, sup.stopping, minutes=minutes, once=True)
                stop.set()
                sources.join()
                settle(sources, redis_client, sup.stopping)
                out["lines"] = lines(sources, before, counts(engine)) + [_notify_line(sink)]
            except Exception as exc:  # noqa: BLE001 - reported, then everything stops
                out["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                stop.set()
                sup.stopping.set()

        thread = threading.Thread(target=main, name="demo", daemon=True)
        thread.start()
        code = sup.run()
        thread.join(60)
        _stop_slack(engine, sink)
    finally:
        stop_started_servers(settings, *started)
    for line in out.get("lines", []):
        mark = "[green]ok[/]" if line.ok else "[red]IDLE[/]"
        console.print(f"{mark} [bold]{line.pool}[/]: {line.text}", soft_wrap=True)
    if "error" in out:
        console.print(f"[red]demo: {out['error']}[/]")
    ok = code == 0 and "error" not in out and all(line.ok for line in out.get("lines", [])) and out.get("lines")
    console.print(f"demo took {time.monotonic() - t0:.0f} s; {'every pool did work' if ok else 'NOT every pool did work'}")
    return 0 if ok else 1


def _status(sources) -> dict:
    p, d, u, t = sources.patterns, sources.discovery, sources.users.counts, sources.trader
    return {"at": time.time(), "patterns": {"ticks": p.ticks, "days": len(sources.plan.days), "published": p.published,
                                            "new": p.new, "last": f"{p.last:%Y-%m-%d}" if p.last else None,
                                            "done": p.done},
            "ingest": {"events": u.events, "logins": u.logins, "takeovers": u.takeovers,
                       "challenged": u.takeovers_challenged, "error": u.error},
            "discovery": {"scanned": d.scanned, "politicians": d.politicians, "done": d.done,
                          "findings": (d.result or {}).get("findings") if isinstance(d.result, dict) else None},
            "shadow": {"trades": t.sent, "entries": t.entries}}


def run_feed(settings, *, minutes: float, **kw) -> int:
    """The sources only, against pools someone else runs (`up --demo`), until SIGTERM/SIGINT."""
    from workers.routing import POOLS

    from .command import wait_for_pools
    from .data import ensure_loaded

    _, redis_url, engine = _servers(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    plan = ensure_loaded(engine, console, symbols=kw["symbols"], replay=kw["days"])
    redis_client = _redis(redis_url)
    sink = _slack(engine, settings.log_dir.resolve())
    app, sources = _sources(engine, redis_client, redis_url, plan, stop, kw)
    online = wait_for_pools(app, POOLS, stop)
    print(f"demo feed: pools online: {', '.join(sorted(online))}; {len(plan.days)} days to replay", flush=True)
    sources.start()
    deadline = time.monotonic() + minutes * 60 if minutes > 0 else None
    last = 0.0
    while not stop.wait(1.0):
        status = _status(sources)
        redis_client.set(STATUS_KEY, json.dumps(status), ex=30)
        if time.monotonic() - last >= 10:
            print(f"demo feed: {json.dumps(status)}", flush=True)
            last = time.monotonic()
        if deadline is not None and time.monotonic() > deadline:
            break
    stop.set()
    sources.join()
    _stop_slack(engine, sink)
    return 0
