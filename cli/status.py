"""``quantpipe status``: is the pipeline healthy? Database, Redis, schema, workers, queues."""

from __future__ import annotations

import click
from rich.table import Table

from workers.routing import POOLS, queue_depth

from .console import console, pass_settings


def collect(timeout: float = 2.0) -> dict:
    """Facts about the running pipeline, as plain data (the CLI and tests both use it)."""
    import redis
    from sqlalchemy import text

    from shared_models import migrate
    from shared_models.db import get_engine, service_urls
    from workers import broker

    facts: dict = {"database": False, "redis": False, "revision": None, "head": migrate.head_revision(),
                   "workers": {p: [] for p in POOLS}, "depth": {p: None for p in POOLS}}
    db_url, redis_url = service_urls()
    try:
        with get_engine(db_url).connect() as conn:
            conn.execute(text("select 1"))
        facts["database"] = True
        facts["revision"] = migrate.current_revision(db_url)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        facts["database_error"] = str(exc).splitlines()[0]
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=timeout)
        client.ping()
        facts["redis"] = True
        facts["depth"] = {p: queue_depth(client, p) for p in POOLS}
        facts["broker"] = broker.held(client)
    except Exception as exc:  # noqa: BLE001
        facts["redis_error"] = str(exc).splitlines()[0]
    if facts["redis"]:
        from workers.app import app

        replies = app.control.inspect(timeout=timeout).active_queues() or {}
        for hostname, queues in replies.items():
            for q in queues:
                if q["name"] in facts["workers"]:
                    facts["workers"][q["name"]].append(hostname)
    return facts


@click.command()
@click.option("--timeout", default=2.0, show_default=True, help="Seconds to wait for worker replies.")
@pass_settings
def status(settings, timeout) -> None:
    """Show database/Redis reachability, migration head, workers online and queue depths."""
    facts = collect(timeout)
    ok = lambda b: "[green]ok[/]" if b else "[red]down[/]"  # noqa: E731
    console.print(f"database  {ok(facts['database'])}  {facts.get('database_error', '')}")
    console.print(f"redis     {ok(facts['redis'])}  {facts.get('redis_error', '')}")
    rev, head = facts["revision"], facts["head"]
    if not facts["database"]:
        console.print(f"schema    unknown: the database is down (head {head})")
    else:
        console.print(f"schema    {rev or '-'} (head {head})"
                      + ("" if rev == head else "  [yellow]run `quantpipe db upgrade`[/]"))
    table = Table(title="pools")
    for col in ("queue", "workers online", "waiting"):
        table.add_column(col)
    for pool in POOLS:
        hosts = facts["workers"][pool]
        table.add_row(pool, f"{len(hosts)} " + (", ".join(sorted(hosts)) if hosts else "[red]none[/]"),
                      str(facts["depth"][pool]) if facts["depth"][pool] is not None else "-")
    console.print(table)
    held = facts.get("broker") or {}
    inflight = {q: n for q, n in (held.get("inflight") or {}).items() if n}
    if inflight:
        console.print("in flight (a dead worker's, back in their queue within a minute): "
                      + ", ".join(f"{q} {n}" for q, n in sorted(inflight.items())))
    if held.get("dead_letter"):
        n = held["dead_letter"]
        console.print(f"[yellow]{n} unreadable queue entr{'y' if n == 1 else 'ies'}[/] kept in Redis "
                      "(_kombu.dead_letter)")
    healthy = facts["database"] and facts["redis"] and rev == head and all(facts["workers"].values())
    raise SystemExit(0 if healthy else 1)
