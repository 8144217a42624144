"""Operational totals of the ingest pool (``quantpipe ingest stats``, ``sw.stats()``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, distinct, func, select

from shared_models.models.core import DeadLetter
from shared_models.models.ingest import IngestEvent, Interest


def collect(engine: Engine, top: int = 10) -> dict[str, Any]:
    """Users, events, events per user, the top entities and users, dead letters."""
    i = Interest
    n = func.sum(i.event_count).label("n")
    with engine.connect() as conn:
        users, events = conn.execute(select(func.count(distinct(i.user_id)),
                                            func.coalesce(func.sum(i.event_count), 0))).one()
        raw = conn.execute(select(func.count()).select_from(IngestEvent)).scalar_one()
        top_entities = conn.execute(select(i.entity_id, n, func.count().label("users")).group_by(i.entity_id)
                                    .order_by(n.desc(), i.entity_id).limit(top)).all()
        top_users = conn.execute(select(i.user_id, n, func.count().label("entities")).group_by(i.user_id)
                                 .order_by(n.desc(), i.user_id).limit(top)).all()
        dead = conn.execute(select(func.count()).select_from(DeadLetter)
                            .where(DeadLetter.pool == "ingest")).scalar_one()
    users, events = int(users), int(events)
    return {
        "users": users, "events": events, "raw_events": int(raw),
        "events_per_user": round(events / users, 2) if users else 0.0,
        "top_entities": [{"entity_id": e, "events": int(k), "users": int(u)} for e, k, u in top_entities],
        "top_users": [{"user_id": u, "events": int(k), "entities": int(m)} for u, k, m in top_users],
        "dead_letters": int(dead),
    }
