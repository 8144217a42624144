"""``quantpipe notify add | list | remove | test | history``: who gets alerts, and what happened to them."""

from __future__ import annotations

import getpass
import time

import click
from rich.table import Table

from .console import console, fail, pass_settings


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "cli"


def _call(fn, *args, **kwargs):
    """Run a pool function in one transaction; its field-named errors become one clean line."""
    from shared_models.db import unit_of_work
    from workers.notifications.subscriptions import SubscriptionError

    try:
        with unit_of_work() as session:
            return fn(session, *args, **kwargs)
    except SubscriptionError as exc:
        fail(str(exc))


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@click.group("notify")
def notify() -> None:
    """Alert subscriptions: signed JSON webhooks, Slack incoming webhooks, email.

    Events: anomaly.critical, shadow.promotion, shadow.manual_review, shadow.rollback,
    shadow.degradation, patterns.producer_down, pipeline.dead_letters (or *, or shadow.*).
    """


@notify.command("add")
@click.argument("url")
@click.option("--events", "-e", required=True, help="Comma-separated events, shadow.* for a family, * for all.")
@click.option("--format", "fmt", type=click.Choice(["json", "slack", "email"]), default=None,
              help="json (signed webhook, default for URLs), slack (incoming webhook), email (an address).")
@click.option("--min-priority", type=click.Choice(["low", "medium", "high", "critical"]), default="low",
              show_default=True, help="Only alerts at or above this priority.")
@click.option("--name", default=None, help="A label (default: the URL's host or the address).")
@pass_settings
def add(settings, url: str, events: str, fmt: str | None, min_priority: str, name: str | None) -> None:
    """Subscribe URL (or an email address) to EVENTS. Prints the signing secret once, on the last line."""
    from workers.notifications import subscriptions

    sub, secret = _call(subscriptions.add, url, events, fmt=fmt, min_priority=min_priority, name=name,
                        created_by=_actor(), settings=settings)
    console.print(f"subscription [bold]{sub['id']}[/] ({sub['format']}) → {sub['target']}")
    console.print(f"events {', '.join(sub['events'])}; priority ≥ {sub['min_priority']}")
    console.print("signing secret (shown once; verify X-Quantpipe-Signature with it):")
    print(secret)


@notify.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include removed subscriptions.")
def list_(show_all: bool) -> None:
    """Subscriptions (secrets are never shown)."""
    from workers.notifications import subscriptions

    rows = _call(subscriptions.list_subscriptions, include_removed=show_all)
    if not rows:
        console.print("no subscriptions (add one with `quantpipe notify add URL --events …`)")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "format", "min", "events", "target"):
        table.add_column(col, no_wrap=col != "events", overflow="fold")
    for r in rows:
        target = _short(r["target"], 34) + ("" if r["active"] else " (removed)")
        table.add_row(str(r["id"]), r["format"], r["min_priority"], ", ".join(r["events"]), target)
    console.print(table)


@notify.command("remove")
@click.argument("subscription_id", type=int)
def remove(subscription_id: int) -> None:
    """Stop sending to SUBSCRIPTION_ID (its history is kept; unsent deliveries are cancelled)."""
    from workers.notifications import subscriptions

    out = _call(subscriptions.remove, subscription_id)
    console.print(f"subscription {out['id']} removed ({out['cancelled_deliveries']} pending deliveries cancelled)")


def _print_attempts(d: dict) -> None:
    for a in d["attempt_log"]:
        status = a["http_status"] if a["http_status"] is not None else "-"
        console.print(f"  attempt {a['attempt']}: status {status}  {a['duration_ms'] or 0:.0f} ms  "
                      f"{_short(a['error'] or 'ok', 50)}")


@notify.command("test")
@click.argument("subscription_id", type=int)
@click.option("--wait", type=click.FloatRange(0, 600), default=30.0, show_default=True,
              help="Seconds to wait for the notify worker to deliver it (0: just queue it).")
@pass_settings
def test(settings, subscription_id: int, wait: float) -> None:
    """Send a signed test alert to SUBSCRIPTION_ID through the real outbox and notify worker."""
    from workers.notifications import subscriptions

    d = _call(subscriptions.test, subscription_id, _actor())
    subscriptions.kick()
    console.print(f"test alert queued as delivery {d['id']} (key {d['idempotency_key']})")
    if wait <= 0:
        return
    deadline = time.monotonic() + wait
    with console.status("waiting for the notify worker…"):
        while time.monotonic() < deadline:
            d = _call(subscriptions.delivery, d["id"])
            if d["status"] in ("delivered", "dead", "cancelled"):
                break
            time.sleep(0.3)
    _print_attempts(d)
    if d["status"] == "delivered":
        console.print(f"[green]delivered[/] (status {d['last_status']})")
        return
    if d["status"] in ("pending", "sending") and not d["attempt_log"]:
        fail(f"not delivered within {wait:.0f} s: is a notify worker running? (`quantpipe worker notify`)")
    fail(f"{d['status']}: {d['last_error'] or 'not delivered yet'}")


@notify.command("history")
@click.option("--subscription", "subscription_id", type=int, default=None, help="Only this subscription.")
@click.option("--event", default=None, help="Only this event.")
@click.option("--status", type=click.Choice(["pending", "sending", "delivered", "dead", "cancelled"]), default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--delivery", "delivery_id", type=int, default=None, help="One delivery with every attempt.")
def history(subscription_id, event, status, limit, delivery_id) -> None:
    """Deliveries, newest first: event, subscription, status, tries, last HTTP status."""
    from workers.notifications import subscriptions

    if delivery_id is not None:
        d = _call(subscriptions.delivery, delivery_id)
        console.print(f"delivery {d['id']}: {d['event']} ({d['priority']}) → subscription {d['subscription_id']} "
                      f"{d['subscription']}: {d['status']}")
        console.print(f"  {_short(d['title'], 72)}")
        _print_attempts(d)
        return
    rows = _call(subscriptions.history, subscription_id=subscription_id, event=event, status=status, limit=limit)
    if not rows:
        console.print("no deliveries yet")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "when (UTC)", "event", "sub", "status", "tries", "http"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(str(r["id"]), r["created_at"][5:19].replace("T", " "), r["event"], str(r["subscription_id"]),
                      r["status"], str(r["attempts"]), str(r["last_status"] or "-"))
    console.print(table)
