"""Managing subscriptions: what ``quantpipe notify`` and the API's admin routes call.

Every function takes a Session (the caller's unit of work: the CLI's, or the API's as
``quantpipe_api``, which may store a secret but never read one back) and returns plain,
JSON-ready dicts. ``add`` returns the new secret once; nothing else ever shows it.
Errors are ``SubscriptionError`` whose message starts with the field at fault.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared_models.models.notifications import FORMATS, PRIORITIES
from shared_models.notifications import PUBLIC_EVENTS, raise_alert

from . import secret_box

EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
PUBLIC_COLUMNS = "id, name, target, format, events, min_priority, created_by, created_at, removed_at"


class SubscriptionError(ValueError):
    """Bad input or an unknown id; the message starts with the field."""

    @property
    def field(self) -> str:
        return str(self).split(":", 1)[0]


def parse_events(events) -> list[str]:
    """``"shadow.promotion,anomaly.critical"``, a list, ``*`` (every event) or ``shadow.*`` (a family)."""
    items = [e.strip() for e in (events.split(",") if isinstance(events, str) else list(events or [])) if e and e.strip()]
    if not items:
        raise SubscriptionError(f"events: at least one event (or *) is required; events are {', '.join(PUBLIC_EVENTS)}")
    out: list[str] = []
    for item in items:
        if item == "*":
            matched = ["*"]
        elif item.endswith(".*"):
            matched = [e for e in PUBLIC_EVENTS if e.startswith(item[:-1])]
        else:
            matched = [item] if item in PUBLIC_EVENTS else []
        if not matched:
            raise SubscriptionError(f"events: unknown event {item!r}; events are {', '.join(PUBLIC_EVENTS)} (or *)")
        out += [m for m in matched if m not in out]
    return ["*"] if "*" in out else out


def check_target(target: str, fmt: str | None) -> tuple[str, str]:
    """(target, format) normalised: an http(s) URL for json/slack, an email address for email."""
    target = (target or "").strip()
    if fmt is not None and fmt not in FORMATS:
        raise SubscriptionError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    looks_like_mail = target.lower().startswith("mailto:") or ("@" in target and "://" not in target)
    fmt = fmt or ("email" if looks_like_mail else "json")
    if not target or len(target) > 2000:
        raise SubscriptionError("url: 1 to 2000 characters")
    if fmt == "email":
        address = target[7:] if target.lower().startswith("mailto:") else target
        if not EMAIL.match(address):
            raise SubscriptionError(f"url: {address!r} is not an email address")
        return address, fmt
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriptionError(f"url: {target[:100]!r} is not an http(s) URL (use --format email for an address)")
    if any(ch.isspace() for ch in target):
        raise SubscriptionError("url: must not contain spaces")
    return target, fmt


def _public(row) -> dict:
    m = dict(row._mapping)
    for k in ("created_at", "removed_at"):
        m[k] = m[k].isoformat() if m[k] is not None else None
    m["events"] = list(m["events"])
    m["active"] = m["removed_at"] is None
    return m


def add(session: Session, target: str, events, *, fmt: str | None = None, min_priority: str = "low",
        name: str | None = None, created_by: str = "cli", settings=None) -> tuple[dict, str]:
    """Create a subscription; returns (its public row, the signing secret — shown this once)."""
    target, fmt = check_target(target, fmt)
    evs = parse_events(events)
    if min_priority not in PRIORITIES:
        raise SubscriptionError(f"min_priority: {min_priority!r} is not one of {', '.join(PRIORITIES)}")
    name = (name or (target if fmt == "email" else urlsplit(target).hostname or target)).strip()[:100]
    if not name:
        raise SubscriptionError("name: must not be empty")
    secret = secret_box.new_secret()
    row = session.execute(text(
        "INSERT INTO notification_subscriptions (name, target, format, events, min_priority, secret_enc, created_by) "
        f"VALUES (:n, :t, :f, CAST(:e AS varchar[]), :p, :s, :by) RETURNING {PUBLIC_COLUMNS}"),
        {"n": name, "t": target, "f": fmt, "e": evs, "p": min_priority, "s": secret_box.encrypt(secret, settings),
         "by": created_by[:100]}).one()
    return _public(row), secret


def list_subscriptions(session: Session, include_removed: bool = False) -> list[dict]:
    where = "" if include_removed else "WHERE removed_at IS NULL"
    return [_public(r) for r in session.execute(text(
        f"SELECT {PUBLIC_COLUMNS} FROM notification_subscriptions {where} ORDER BY id"))]


def get(session: Session, subscription_id: int) -> dict:
    row = session.execute(text(f"SELECT {PUBLIC_COLUMNS} FROM notification_subscriptions WHERE id = :i"),
                          {"i": int(subscription_id)}).first()
    if row is None:
        raise SubscriptionError(f"subscription_id: no subscription {subscription_id}")
    return _public(row)


def remove(session: Session, subscription_id: int) -> dict:
    """Stop sending to it (kept for its history); deliveries not yet sent are cancelled."""
    sub = get(session, subscription_id)
    if sub["active"]:
        session.execute(text("UPDATE notification_subscriptions SET removed_at = now() WHERE id = :i"),
                        {"i": int(subscription_id)})
    cancelled = session.execute(text("UPDATE notification_deliveries SET status = 'cancelled' "
                                     "WHERE subscription_id = :i AND status = 'pending'"),
                                {"i": int(subscription_id)}).rowcount
    return {**get(session, subscription_id), "cancelled_deliveries": cancelled}


def test(session: Session, subscription_id: int, actor: str) -> dict:
    """Queue a signed test alert for this one subscription; returns its delivery (see ``delivery``)."""
    sub = get(session, subscription_id)
    if not sub["active"]:
        raise SubscriptionError(f"subscription_id: subscription {subscription_id} was removed")
    raised = raise_alert(session, "notify.test", uuid.uuid4().hex, f"Test alert for {sub['name']}",
                         {"actor": actor, "subscription_id": sub["id"], "name": sub["name"]},
                         only_subscription=sub["id"])
    did = session.execute(text("SELECT d.id FROM notification_deliveries d JOIN notification_alerts a "
                               "ON a.id = d.alert_id WHERE a.alert_key = :k"), {"k": raised.key}).scalar_one()
    return delivery(session, did)


HISTORY_SQL = """
SELECT d.id, d.subscription_id, s.name AS subscription, a.event, a.priority, a.title, CAST(a.uid AS text) AS alert,
       CAST(d.idempotency_key AS text) AS idempotency_key, d.status, d.attempts, d.last_status, d.last_error,
       a.created_at, d.delivered_at
FROM notification_deliveries d JOIN notification_alerts a ON a.id = d.alert_id
JOIN notification_subscriptions s ON s.id = d.subscription_id
"""


def _delivery_row(row) -> dict:
    m = dict(row._mapping)
    for k in ("created_at", "delivered_at"):
        m[k] = m[k].isoformat() if m[k] is not None else None
    return m


def history(session: Session, *, subscription_id: int | None = None, event: str | None = None,
            status: str | None = None, limit: int = 50, offset: int = 0) -> list[dict]:
    """Deliveries, newest first, with their outcome (``delivery`` adds every attempt)."""
    where, params = [], {"limit": int(limit), "offset": int(offset)}
    for col, value, key in (("d.subscription_id", subscription_id, "sid"), ("a.event", event, "ev"),
                            ("d.status", status, "st")):
        if value is not None:
            where.append(f"{col} = :{key}")
            params[key] = value
    sql = HISTORY_SQL + (f"WHERE {' AND '.join(where)} " if where else "") + \
        "ORDER BY a.created_at DESC, d.id DESC LIMIT :limit OFFSET :offset"
    return [_delivery_row(r) for r in session.execute(text(sql), params)]


def delivery(session: Session, delivery_id: int) -> dict:
    row = session.execute(text(HISTORY_SQL + "WHERE d.id = :i"), {"i": int(delivery_id)}).first()
    if row is None:
        raise SubscriptionError(f"delivery_id: no delivery {delivery_id}")
    out = _delivery_row(row)
    out["attempt_log"] = [
        {"attempt": a, "worker": w, "started_at": s.isoformat(), "finished_at": f.isoformat() if f else None,
         "http_status": h, "error": e, "duration_ms": ms}
        for a, w, s, f, h, e, ms in session.execute(text(
            "SELECT attempt, worker, started_at, finished_at, http_status, error, duration_ms "
            "FROM notification_attempts WHERE delivery_id = :i ORDER BY attempt"), {"i": int(delivery_id)})]
    return out


def kick() -> None:
    """Ask a notify worker to dispatch now (by name) instead of at the next beat; harmless if none runs."""
    try:
        from workers.app import app

        app.send_task("notify.dispatch", expires=60)
    except Exception:  # noqa: BLE001 - beat dispatches every QUANTPIPE_NOTIFY_POLL_SECONDS anyway
        pass
