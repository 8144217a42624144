"""Retention (#9 item 12): a day of heartbeats and detections does not grow without bound.

Rows are written through the real paths (``log_integration_event``, ``persist_detections``
with an old clock, ``relay_outbox``, the dead-letter helper), then dated back as a clock
would have; ``patterns.prune`` runs on the session's patterns worker, as its role.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared_models import dead_letters
from shared_models.settings import get_settings
from workers.app import app
from workers.patterns.detection import Detection
from workers.patterns.publisher import persist_detections, relay_outbox

DAY = 1440  # one heartbeat a minute (PATTERNS_ALIVE_SECONDS = 60)


def _heartbeats(engine, tag: str, days_ago: float) -> None:
    """A day of PRODUCER_ALIVE rows through the contract's function, dated ``days_ago`` back."""
    with engine.begin() as c:
        c.execute(text("SELECT log_integration_event(gen_random_uuid(), 'heartbeat', 'TickStockPL', "
                       "'PRODUCER_ALIVE', NULL, NULL, NULL, NULL, NULL, jsonb_build_object('qp_retention', "
                       "CAST(:tag AS text), 'minute', n)) FROM generate_series(1, :n) AS n"), {"tag": tag, "n": DAY})
        c.execute(text("UPDATE integration_events SET \"timestamp\" = now() - make_interval(days => :d) "
                       "- make_interval(mins => (details->>'minute')::int) WHERE details->>'qp_retention' = :tag "
                       "AND \"timestamp\" > now() - interval '1 hour'"), {"tag": tag, "d": days_ago})


def _detections(engine, redis_client, prefix: str, n: int, detected: float) -> list[int]:
    bar = datetime.fromtimestamp(detected, timezone.utc).replace(microsecond=0)
    dets = [Detection(f"{prefix}{i:03d}", "Doji", "daily", bar, 0.7, 10.0, 0.1, 1e5, 0) for i in range(n)]
    with Session(engine) as s, s.begin():
        ids = [p.detection_id for p in persist_detections(s, dets, 24.0, now=detected)]
    relay_outbox(engine, redis_client, ids=ids)
    return ids


def _count(engine, sql: str, **params) -> int:
    with engine.connect() as c:
        return c.execute(text(sql), params).scalar()


def test_a_day_of_heartbeats_and_detections_is_pruned_to_a_bound(workers, engine, redis_client):
    r = get_settings().retention
    tag = uuid.uuid4().hex[:8]
    old_p, new_p = f"RO{tag[:5].upper()}", f"RN{tag[:5].upper()}"
    try:
        _heartbeats(engine, tag + "-old", r.integration_events_days + 1)
        _heartbeats(engine, tag + "-new", 0)
        stale = _detections(engine, redis_client, old_p, 200, time.time() - 86400 * (r.detections_expired_days + 3))
        fresh = _detections(engine, redis_client, new_p, 50, time.time() - 3600)
        with engine.begin() as c:  # 20 fresh detections were published long ago: their outbox rows go
            c.execute(text("UPDATE pattern_outbox SET sent_at = now() - make_interval(days => :d) "
                           "WHERE detection_id = ANY(:ids)"), {"d": r.outbox_sent_days + 1, "ids": fresh[:20]})
            c.execute(text("UPDATE integration_events SET \"timestamp\" = now() - make_interval(days => :d) "
                           "WHERE symbol LIKE :p"), {"d": r.integration_events_days + 2, "p": old_p + "%"})
        with Session(engine) as s, s.begin():
            dead_letters.keep_many(s, "patterns", [dead_letters.Letter(f"qp_retention_{tag}", "test", {"i": i})
                                                   for i in range(30)])
            s.execute(text("UPDATE dead_letters SET created_at = now() - make_interval(days => :d) "
                           "WHERE source = :s AND (payload->>'i')::int < 20"),
                      {"d": r.dead_letters_days + 1, "s": f"qp_retention_{tag}"})

        out = app.tasks["patterns.prune"].delay(batch_rows=100).get(timeout=300)

        assert out["role"] == "quantpipe_patterns" and out["complete"], out
        assert out["integration_events"] >= DAY + 200 and out["batches"] > (DAY + 200) // 100, out
        assert out["pattern_detections_expired"] >= 200 and out["pattern_outbox_sent"] >= 20, out
        assert out["dead_letters"] >= 20, out
        hb = "SELECT count(*) FROM integration_events WHERE details->>'qp_retention' = :t"
        assert _count(engine, hb, t=tag + "-old") == 0
        assert _count(engine, hb, t=tag + "-new") == DAY                     # the last day is kept whole
        det = "SELECT count(*) FROM pattern_detections WHERE symbol LIKE :p"
        assert _count(engine, det, p=old_p + "%") == 0
        assert _count(engine, det, p=new_p + "%") == 50                      # not expired long enough: kept
        assert _count(engine, "SELECT count(*) FROM pattern_outbox WHERE detection_id = ANY(:i)", i=stale) == 0
        assert _count(engine, "SELECT count(*) FROM pattern_outbox WHERE detection_id = ANY(:i)", i=fresh) == 30
        assert _count(engine, "SELECT count(*) FROM integration_events WHERE symbol LIKE :p", p=new_p + "%") == 50
        assert _count(engine, "SELECT count(*) FROM dead_letters WHERE source = :s", s=f"qp_retention_{tag}") == 10
        oldest = _count(engine, "SELECT min(\"timestamp\") FROM integration_events")
        assert oldest is None or oldest > datetime.now(timezone.utc) - timedelta(days=r.integration_events_days + 1)

        again = app.tasks["patterns.prune"].delay(batch_rows=100).get(timeout=120)  # idempotent
        assert {k: again[k] for k in ("integration_events", "pattern_outbox_sent", "pattern_detections_expired",
                                      "dead_letters")} == dict.fromkeys(("integration_events", "pattern_outbox_sent",
                                                                         "pattern_detections_expired",
                                                                         "dead_letters"), 0), again
        assert _count(engine, hb, t=tag + "-new") == DAY
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM integration_events WHERE details->>'qp_retention' LIKE :t OR symbol LIKE :a "
                           "OR symbol LIKE :b"), {"t": tag + "%", "a": old_p + "%", "b": new_p + "%"})
            c.execute(text("DELETE FROM pattern_detections WHERE symbol LIKE :a OR symbol LIKE :b"),
                      {"a": old_p + "%", "b": new_p + "%"})
            c.execute(text("DELETE FROM user_pattern_alerts WHERE symbol LIKE :a OR symbol LIKE :b"),
                      {"a": old_p + "%", "b": new_p + "%"})
            c.execute(text("DELETE FROM dead_letters WHERE source = :s"), {"s": f"qp_retention_{tag}"})


def test_zero_days_keeps_rows_forever_and_every_pool_has_a_beat_entry():
    from shared_models.retention import rules
    from shared_models.settings import Settings
    from workers.beat_schedule import build_schedule
    from workers.routing import POOLS

    keep = Settings.from_env({"QUANTPIPE_RETAIN_INTEGRATION_EVENTS_DAYS": "0", "QUANTPIPE_RETAIN_DEAD_LETTERS_DAYS": "0"})
    assert "integration_events" not in {x.name for x in rules("patterns", keep)}
    assert rules("ingest", keep) == []
    schedule = build_schedule(Settings.from_env({}))
    assert {schedule[f"{p}:prune"]["task"] for p in POOLS} == {f"{p}.prune" for p in POOLS}
