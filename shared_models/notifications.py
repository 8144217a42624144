"""The one call a pool makes to tell people something: ``raise_alert`` inside its own transaction.

An alert is written by the SQL function ``notify_alert`` (migration 0012) together with
one outbox row per matching subscription, in the caller's transaction, so an alert
exists exactly when the fact that caused it was committed (a rolled-back promotion
alerts nobody; a committed one is never lost). The notify worker delivers the outbox.

``key`` names the fact (``shadow.promotion:event:42``): raising the same fact again —
a redelivered task, a re-run scan — is a no-op, so nobody is told twice.

Pools pass facts (``data``), not prose: the notify pool renders the text, the numbers
and the dashboard link for each channel (``workers/notifications/render.py``).

Also here because two pools share them: ``forget_user`` (ingest's erasure removes the
user from every pattern audience) and ``audience_params`` (what the patterns pool passes
to ``pattern_audience``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .models.notifications import PRIORITIES

# Every event and its priority (seed 004 for the shadow events; the others are ours, see
# docs/notifications.md).
EVENTS: dict[str, str] = {
    "anomaly.critical": "critical",
    "shadow.promotion": "high",
    "shadow.manual_review": "medium",
    "shadow.rollback": "critical",
    "shadow.degradation": "high",
    "patterns.producer_down": "high",
    "pipeline.dead_letters": "medium",
    "notify.test": "low",
}
PUBLIC_EVENTS = tuple(e for e in EVENTS if e != "notify.test")


class AlertError(ValueError):
    """An alert that cannot be raised; the message starts with the field at fault."""


@dataclass(frozen=True)
class Raised:
    key: str
    event: str
    priority: str
    deliveries: int | None  # None: the same key was raised before (nothing new written)

    @property
    def duplicate(self) -> bool:
        return self.deliveries is None


def _clean(value: Any) -> Any:
    """JSON-safe facts: non-finite floats become null (jsonb rejects NaN), numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


_SQL = ("SELECT notify_alert(CAST(%(key)s AS varchar), CAST(%(event)s AS varchar), CAST(%(priority)s AS varchar), "
        "CAST(%(title)s AS varchar), CAST(%(data)s AS jsonb), CAST(%(only)s AS bigint))")


def _execute(target: Any, params: dict) -> Any:
    """Run ``_SQL`` on a SQLAlchemy Session/Connection or a psycopg2 cursor/connection; the scalar result."""
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    if isinstance(target, Session):
        target = target.connection()
    if isinstance(target, Connection):
        return target.exec_driver_sql(_SQL, params).scalar()
    cursor = target if hasattr(target, "execute") and hasattr(target, "fetchone") else target.cursor()
    cursor.execute(_SQL, params)
    return cursor.fetchone()[0]


def _alert_params(event: str, key: str, title: str, data: dict | None, priority: str | None,
                  only_subscription: int | None) -> dict:
    """``notify_alert``'s arguments for one alert, checked."""
    if event not in EVENTS:
        raise AlertError(f"event: unknown event {event!r} (one of {', '.join(EVENTS)})")
    priority = priority or EVENTS[event]
    if priority not in PRIORITIES:
        raise AlertError(f"priority: {priority!r} is not one of {', '.join(PRIORITIES)}")
    if not key or len(key) > 200:
        raise AlertError("key: 1 to 200 characters naming the fact")
    full_key = key if key.startswith(event + ":") else f"{event}:{key}"
    if len(full_key) > 200:
        raise AlertError("key: too long once prefixed with the event (200 characters at most)")
    return {"key": full_key, "event": event, "priority": priority, "title": (title or event)[:300],
            "data": json.dumps(_clean(data or {}), ensure_ascii=False, allow_nan=False), "only": only_subscription}


def raise_alert(target: Any, event: str, key: str, title: str, data: dict | None = None, *,
                priority: str | None = None, only_subscription: int | None = None) -> Raised:
    """Write the alert and its outbox rows in the caller's transaction (``target``: a Session,
    Connection, or psycopg2 cursor/connection). ``key`` identifies the fact; raising it again
    writes nothing. ``priority`` defaults to the event's; ``only_subscription`` sends to that
    subscription alone (``quantpipe notify test``)."""
    params = _alert_params(event, key, title, data, priority, only_subscription)
    return Raised(params["key"], event, params["priority"], _execute(target, params))


_MANY_SQL = ("SELECT a.n, notify_alert(CAST(a.key AS varchar), CAST(a.event AS varchar), CAST(a.priority AS varchar), "
             "CAST(a.title AS varchar), CAST(a.data AS jsonb), CAST(NULL AS bigint)) "
             "FROM unnest(%(key)s::text[], %(event)s::text[], %(priority)s::text[], %(title)s::text[], "
             "%(data)s::text[]) WITH ORDINALITY AS a(key, event, priority, title, data, n) ORDER BY a.n")


def raise_alerts(session: Any, alerts: list[tuple[str, str, str, dict | None]]) -> list[Raised]:
    """``raise_alert(session, event, key, title, data)`` for each (event, key, title, data), in order, as ONE
    statement (a scan raises a few alerts per politician: one round trip, not one each). ``session``: a
    SQLAlchemy Session or Connection."""
    if not alerts:
        return []
    from sqlalchemy.orm import Session

    params = [_alert_params(e, k, t, d, None, None) for e, k, t, d in alerts]
    conn = session.connection() if isinstance(session, Session) else session
    rows = conn.exec_driver_sql(_MANY_SQL, {c: [p[c] for p in params]
                                            for c in ("key", "event", "priority", "title", "data")}).all()
    out = dict(rows)
    return [Raised(p["key"], p["event"], p["priority"], out[n]) for n, p in enumerate(params, 1)]


def priority_at_least(priority: str, minimum: str) -> bool:
    return PRIORITIES.index(priority) >= PRIORITIES.index(minimum)


# ---- personal pattern alerts (shared by the patterns and ingest pools) --------------------------------------------

def audience_params(settings=None) -> dict[str, float]:
    """The parameters ``pattern_audience`` takes, from the settings (min score, interest half-life)."""
    from .settings import get_settings

    s = settings or get_settings()
    return {"audience_min_score": float(s.notify.alert_min_score),
            "audience_half_life_days": float(s.ingest.half_life_days)}


def forget_user(conn: Any, user_id: Any) -> int:
    """Erasure: delete the user's personal alerts (in the erasure's transaction).

    SHARE ROW EXCLUSIVE waits for every publishing transaction that already wrote alerts
    (so their rows are deleted too) and makes later ones wait for this erasure to commit,
    after which they no longer see the user's library.
    """
    from sqlalchemy import text

    conn.exec_driver_sql("LOCK TABLE user_pattern_alerts IN SHARE ROW EXCLUSIVE MODE")
    return conn.execute(text("DELETE FROM user_pattern_alerts WHERE user_id = :u"), {"u": str(user_id)}).rowcount


def _why(reason: str, symbol: str, score: float | None, min_score: float | None) -> str:
    if reason == "pinned":
        return f"{symbol} is in your portfolio (pinned in your library)"
    shown = f"{score:.1f}" if score is not None else "?"
    return f"{symbol} is in your library (interest score {shown}" + (f" >= {min_score:g})" if min_score else ")")


def user_alerts(session: Any, user_id: str, *, limit: int = 50, offset: int = 0,
                min_score: float | None = None) -> list[dict]:
    """The patterns published on a user's symbols, newest first, with why the user gets each one.

    ``user_id`` in its stored form (``workers.ingestion.events.check_user_id``). A plain read the
    main app (or the API, as its role) calls."""
    from sqlalchemy import text

    rows = session.execute(text(
        "SELECT a.id, CAST(a.flow_id AS text) AS flow_id, a.detection_id, a.symbol, a.pattern, a.tier, a.confidence, "
        "a.reason, a.score, a.created_at, d.bar_ts, d.current_price, d.price_change, d.expires_at "
        "FROM user_pattern_alerts a LEFT JOIN pattern_detections d ON d.id = a.detection_id "
        "WHERE a.user_id = :u ORDER BY a.created_at DESC, a.id DESC LIMIT :l OFFSET :o"),
        {"u": str(user_id), "l": int(limit), "o": int(offset)}).all()
    out = []
    for r in rows:
        m = dict(r._mapping)
        m["why"] = _why(m["reason"], m["symbol"], m["score"], min_score)
        m["confidence"] = round(float(m["confidence"]), 2)
        for k in ("created_at", "bar_ts", "expires_at"):
            m[k] = m[k].timestamp() if m[k] is not None else None
        out.append(m)
    return out
