"""Profiles: the ranked library of a user and their behavioural fingerprint."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, text

TOP_N_FINGERPRINT = 10
TIERS = ((25.0, "core"), (8.0, "active"), (float("-inf"), "casual"))

_LIBRARY_SQL = text("""
SELECT coalesce(i.entity_id, h.entity_id) AS entity_id,
       coalesce(ingest_decay(i.score, greatest(0, extract(epoch FROM now() - i.score_at))::float8, :hl), 0)
           AS score,
       coalesce(i.event_count, 0) AS event_count, coalesce(i.action_counts, '{}'::jsonb) AS action_counts,
       i.first_seen, i.last_seen, h.entity_id IS NOT NULL AS pinned
FROM (SELECT * FROM ingest_interests WHERE user_id = :u) i
FULL JOIN (SELECT * FROM ingest_holdings WHERE user_id = :u) h ON h.entity_id = i.entity_id
ORDER BY pinned DESC, score DESC, entity_id
LIMIT :n
""")


def tier_of(score: float) -> str:
    return next(name for bound, name in TIERS if score >= bound)


def _iso(dt) -> str | None:
    return dt.isoformat() if dt is not None else None


def fingerprint_of(library: list[dict[str, Any]]) -> dict[str, Any]:
    """Hash of the top entities by score, plus the action mix: stable while behaviour is."""
    ranked = sorted((e for e in library if e["event_count"]), key=lambda e: (-e["score"], e["entity_id"]))
    top = [e["entity_id"] for e in ranked[:TOP_N_FINGERPRINT]]
    totals: dict[str, int] = {}
    for e in library:
        for action, n in e["action_counts"].items():
            totals[action] = totals.get(action, 0) + int(n)
    n_all = sum(totals.values())
    return {
        "hash": hashlib.sha256("|".join(top).encode()).hexdigest()[:32] if top else None,
        "top_entities": top,
        "action_mix": {a: round(n / n_all, 4) for a, n in sorted(totals.items())} if n_all else {},
    }


def load_profile(conn: Connection, user_id: int, half_life_seconds: float, limit: int = 100) -> dict[str, Any]:
    rows = conn.execute(_LIBRARY_SQL, {"u": user_id, "hl": half_life_seconds, "n": limit}).mappings().all()
    library = [{
        "entity_id": r["entity_id"], "score": round(float(r["score"]), 6), "tier": tier_of(float(r["score"])),
        "action_counts": dict(r["action_counts"]), "event_count": int(r["event_count"]),
        "first_seen": _iso(r["first_seen"]), "last_seen": _iso(r["last_seen"]), "pinned": bool(r["pinned"]),
    } for r in rows]
    totals = conn.execute(text(
        "SELECT count(*) AS entities, coalesce(sum(event_count), 0) AS events, min(first_seen) AS first_seen, "
        "max(last_seen) AS last_seen FROM ingest_interests WHERE user_id = :u"), {"u": user_id}).mappings().one()
    return {
        "user_id": user_id,
        "library": library,
        "fingerprint": fingerprint_of(library),
        "totals": {"events": int(totals["events"]), "entities": int(totals["entities"]),
                   "first_seen": _iso(totals["first_seen"]), "last_seen": _iso(totals["last_seen"])},
    }
