"""ingest.drain on a real worker: malformed stream entries are dead-lettered with a reason,
the valid events around them are all stored; retention and beat wiring."""

from __future__ import annotations

import json
import os
import time
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from workers.ingestion.stream import GROUP, STREAM, ensure_group
from tests.workers.ingestion.helpers import new_user
from workers.app import app

FIELDS = ["event_id", "user_id", "entity_id", "action", "weight", "ts", "metadata"]
junk = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=60),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
                 st.just("A" * 100), st.just(10**30), st.just(time.time() + 10**6), st.just({"x": "y" * 5000}))


def _valid(user):
    return {"event_id": str(uuid.uuid4()), "user_id": user, "entity_id": "AAPL", "action": "view", "weight": 1.0,
            "ts": time.time() - 5, "metadata": {"ok": True}}


@st.composite
def entry(draw, user):
    kind = draw(st.sampled_from(["valid", "valid", "mutated", "missing", "not_json", "not_object", "no_field"]))
    ev = _valid(user)
    if kind == "valid":
        return kind, ev["event_id"], {"e": json.dumps(ev)}
    if kind == "mutated":
        name = draw(st.sampled_from(FIELDS[1:]))
        ev[name] = draw(junk)
        return kind, ev["event_id"], {"e": json.dumps(ev, default=str)}
    if kind == "missing":
        ev.pop(draw(st.sampled_from(FIELDS[:6])))
        return kind, ev.get("event_id"), {"e": json.dumps(ev)}
    if kind == "not_json":
        return kind, None, {"e": draw(st.binary(min_size=1, max_size=40)).replace(b"{", b"(") + b"\xff"}
    if kind == "not_object":
        return kind, None, {"e": json.dumps(draw(st.one_of(st.integers(), st.lists(st.integers()), st.text())))}
    return kind, None, {"x": draw(st.text(max_size=20)) or "?"}


def _dead(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM dead_letters WHERE pool = 'ingest'")).scalar_one()


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_malformed_entries_dead_lettered_valid_ones_stored(workers, engine, redis_client, data):
    user = new_user()
    entries = data.draw(st.lists(entry(user), min_size=120, max_size=180))
    ensure_group(redis_client)
    dead_before = _dead(engine)
    pipe = redis_client.pipeline(transaction=False)
    for _, _, fields in entries:
        pipe.xadd(STREAM, fields)
    pipe.execute()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        app.tasks["ingest.drain"].apply_async(ignore_result=False).get(timeout=60)
        if redis_client.xpending(STREAM, GROUP)["pending"] == 0 and redis_client.xlen(STREAM) == 0:
            break
    ids = [eid for _, eid, _ in entries if eid]
    with engine.connect() as c:
        stored = set(map(str, c.execute(text("SELECT event_id FROM ingest_events WHERE event_id = ANY(CAST(:ids AS uuid[]))"),
                                        {"ids": ids}).scalars()))
        reasons = c.execute(text("SELECT field, reason FROM dead_letters WHERE pool = 'ingest' "
                                 "ORDER BY id DESC LIMIT :n"), {"n": _dead(engine) - dead_before}).all()
    dead = _dead(engine) - dead_before
    assert len(stored) + dead == len(entries)  # nothing silently dropped
    for kind, eid, _ in entries:
        if kind == "valid":
            assert eid in stored
        elif kind in ("missing", "not_json", "not_object", "no_field"):
            assert eid not in stored
    assert all(reason and field for field, reason in reasons)


def test_purge_task_and_beat_entries(workers, engine):
    from workers.ingestion import store
    from workers.beat_schedule import build_schedule
    from shared_models.settings import get_settings

    user = new_user()
    old = dict(_valid(user), ts=time.time() - 400 * 86400)
    with engine.begin() as c:
        store.write_events(c, [old, _valid(user)], 14 * 86400.0)
    out = app.tasks["ingest.purge_events"].delay().get(timeout=60)
    assert out["deleted_events"] >= 1
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM ingest_events WHERE user_id = :u"), {"u": user}).scalar() == 1
        assert c.execute(text("SELECT event_count FROM ingest_interests WHERE user_id = :u"),
                         {"u": user}).scalar() == 2
    sched = build_schedule(get_settings())
    assert sched["ingest:drain"]["task"] == "ingest.drain" and sched["ingest:drain"]["schedule"] <= 1.0
    assert sched["ingest:purge-events"]["task"] == "ingest.purge_events"


def test_record_event_baseline_task_is_idempotent(workers, engine):
    user = new_user()
    ev = _valid(user)
    outs = [app.tasks["ingest.record_event"].apply_async(args=[ev], ignore_result=False).get(timeout=60)
            for _ in range(2)]
    assert [o["inserted"] for o in outs] == [1, 0]
    with engine.connect() as c:
        assert c.execute(text("SELECT event_count FROM ingest_interests WHERE user_id = :u"),
                         {"u": user}).scalar() == 1


def test_consumers_of_dead_processes_are_forgotten(redis_client):
    import socket

    from workers.ingestion import stream

    ensure_group(redis_client)
    dead, alive = f"{socket.gethostname()}:999999999", f"{socket.gethostname()}:{os.getpid()}"
    for name in (dead, alive):
        redis_client.xgroup_createconsumer(STREAM, GROUP, name)
    stream.forget_idle_consumers(redis_client)
    names = {c["name"].decode() if isinstance(c["name"], bytes) else c["name"]
             for c in redis_client.xinfo_consumers(STREAM, GROUP)}
    assert dead not in names and alive in names
    redis_client.xgroup_delconsumer(STREAM, GROUP, alive)
