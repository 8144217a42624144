"""Profiles: the ranked library of a user and their behavioural fingerprint."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, func, select, text

from shared_models.models.ingest import Erasure, Interest

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


def load_profile(conn: Connection, user_id: str, half_life_seconds: float, limit: int = 100) -> dict[str, Any]:
    rows = conn.execute(_LIBRARY_SQL, {"u": user_id, "hl": half_life_seconds, "n": limit}).mappings().all()
    library = [{
        "entity_id": r["entity_id"], "score": round(float(r["score"]), 6), "tier": tier_of(float(r["score"])),
        "action_counts": dict(r["action_counts"]), "event_count": int(r["event_count"]),
        "first_seen": _iso(r["first_seen"]), "last_seen": _iso(r["last_seen"]), "pinned": bool(r["pinned"]),
    } for r in rows]
    totals = conn.execute(select(
        func.count().label("entities"), func.coalesce(func.sum(Interest.event_count), 0).label("events"),
        func.min(Interest.first_seen).label("first_seen"), func.max(Interest.last_seen).label("last_seen"))
        .where(Interest.user_id == user_id)).mappings().one()
    return {
        "user_id": user_id,
        "library": library,
        "fingerprint": fingerprint_of(library),
        "totals": {"events": int(totals["events"]), "entities": int(totals["entities"]),
                   "first_seen": _iso(totals["first_seen"]), "last_seen": _iso(totals["last_seen"])},
    }


def cached_profile(engine, entries, user_id: str, half_life_seconds: float, *, fresh: bool = False
                   ) -> dict[str, Any]:
    """The profile from the cache within its staleness bound (workers/ingestion/bounded.py), else
    read from PostgreSQL and cached with its fingerprint (for login checks). ``fresh``: always read."""
    from . import cache as cache_mod

    ck = cache_mod.profile_key(user_id)
    if fresh:
        seen = entries.counter(user_id)
    else:
        cached, seen = entries.get(ck, user_id, check=lambda p: isinstance(p, dict) and p.get("user_id") == user_id)
        if cached is not None:
            return cached
    with engine.connect() as conn:
        read_at = conn.execute(select(func.clock_timestamp())).scalar_one()
        profile = load_profile(conn, user_id, half_life_seconds)
    entries.put(user_id, seen, {ck: profile, cache_mod.fingerprint_key(user_id): profile["fingerprint"]})
    _uncache_if_erased_since(engine, entries.cache, user_id, read_at)
    return profile


def _uncache_if_erased_since(engine, cache, user_id: str, read_at) -> None:
    """An erasure that committed its tombstone after our read began may have cleared the cache
    before our set: take the keys back out. (Tombstone after this check => its erasure clears
    the cache after our set.)"""
    from . import cache as cache_mod
    from .erasure import erasure_key

    with engine.connect() as conn:
        erased = conn.execute(select(Erasure.user_key).where(
            Erasure.user_key == erasure_key(str(user_id)), Erasure.erased_at >= read_at)).first()
    if erased:
        cache.delete(*cache_mod.user_keys(user_id))


def fingerprint(engine, entries, user_id: str, half_life_seconds: float, *, fresh: bool = False
                ) -> dict[str, Any]:
    from . import cache as cache_mod

    if not fresh:
        cached, _ = entries.get(cache_mod.fingerprint_key(user_id), user_id, check=_is_fingerprint)
        if cached is not None:
            return cached
    return cached_profile(engine, entries, user_id, half_life_seconds, fresh=fresh)["fingerprint"]


def _is_fingerprint(value: Any) -> bool:
    return isinstance(value, dict) and {"hash", "top_entities", "action_mix"} <= value.keys()
