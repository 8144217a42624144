"""No batch is hostage to one entry (#9 items 1, 6, 7): poison entries through a real worker's
ingest.drain are dead-lettered with the reason and acknowledged; every valid event around them is
stored; an id reused with other content is a dead letter, an identical resend a duplicate."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import text

from tests.workers.ingestion.helpers import new_user
from workers.app import app
from workers.ingestion.stream import GROUP, STREAM, ensure_group


def _valid(user, **kw):
    e = {"event_id": str(uuid.uuid4()), "user_id": user, "entity_id": "AAPL", "action": "view", "weight": 1.0,
         "ts": time.time() - 5, "metadata": {"ok": True}}
    e.update(kw)
    return e


def _drain_all(redis_client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.tasks["ingest.drain"].apply_async(ignore_result=False).get(timeout=120)
        if redis_client.xpending(STREAM, GROUP)["pending"] == 0 and redis_client.xlen(STREAM) == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"stream not drained: {redis_client.xlen(STREAM)} queued, "
                         f"{redis_client.xpending(STREAM, GROUP)['pending']} pending")


def _add(redis_client, entries) -> None:
    ensure_group(redis_client)
    pipe = redis_client.pipeline(transaction=False)
    for fields in entries:
        pipe.xadd(STREAM, fields)
    pipe.execute()


def _max_dead_id(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT coalesce(max(id), 0) FROM dead_letters")).scalar_one()


def _dead_since(engine, after: int) -> list:
    with engine.connect() as c:
        return c.execute(text("SELECT field, reason, payload, length(payload::text) AS size, payload_bytes, payload_sha256, "
                              "payload_truncated, subject_key FROM dead_letters "
                              "WHERE pool = 'ingest' AND id > :i ORDER BY id"), {"i": after}).mappings().all()


def _stored(engine, user) -> set[str]:
    with engine.connect() as c:
        return set(map(str, c.execute(text("SELECT event_id FROM ingest_events WHERE user_id = :u"),
                                      {"u": user}).scalars()))


def _deep_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def test_poison_entries_are_isolated_and_the_stream_keeps_flowing(workers, engine, redis_client):
    user = new_user()
    before = [_valid(user) for _ in range(50)]
    after = [_valid(user) for _ in range(50)]
    deep = _valid(user)
    deep["metadata"] = json.loads(_deep_json(479))  # ~1 KB, 480 levels: RecursionError on every batch before
    poison = [
        {"e": json.dumps(deep)},
        {"e": '{"event_id": "%s", "user_id": %s, "metadata": %s}' % (uuid.uuid4(), user, _deep_json(100_000))},
        {"e": "\x01" * 2_000_000},  # 2 MB of garbage
        {"e": json.dumps(_valid(user, metadata={"ip": "203.0.113.77"}, entity_id=[1]))},
    ]
    mark = _max_dead_id(engine)
    _add(redis_client, [{"e": json.dumps(e)} for e in before] + poison + [{"e": json.dumps(e)} for e in after])
    _drain_all(redis_client)
    assert _stored(engine, user) == {e["event_id"] for e in before + after}
    dead = _dead_since(engine, mark)
    assert len(dead) == len(poison)
    assert all(d["field"] and d["reason"] for d in dead)
    assert "nested deeper than 16" in dead[0]["reason"] and dead[0]["field"] == "metadata"
    assert "exceeds the bound" in dead[2]["reason"]
    assert all(d["size"] < 30_000 for d in dead)  # capped (4 KB prefix, escaped): the 2 MB entry is not kept whole
    assert dead[2]["payload_bytes"] == 2_000_000 and dead[2]["payload_truncated"]
    assert len(dead[2]["payload_sha256"]) == 64
    assert dead[0]["subject_key"] and dead[1]["subject_key"]  # about the user: erasure can find them
    assert "203.0.113.77" not in json.dumps([d["payload"] for d in dead])  # dead letters keep no raw IP


def test_null_event_id_is_dead_lettered_not_given_a_fresh_id(workers, engine, redis_client):
    user = new_user()
    mark = _max_dead_id(engine)
    entry = {"e": json.dumps(_valid(user, event_id=None))}
    _add(redis_client, [entry, entry])  # a resend must not become two events
    _drain_all(redis_client)
    assert _stored(engine, user) == set()
    dead = _dead_since(engine, mark)
    assert [d["field"] for d in dead] == ["event_id", "event_id"] and "null" in dead[0]["reason"]


def test_reused_event_id_with_other_content_is_dead_lettered_identical_resend_is_a_duplicate(
        workers, engine, redis_client):
    user = new_user()
    first = _valid(user)
    _add(redis_client, [{"e": json.dumps(first)}])
    _drain_all(redis_client)
    mark = _max_dead_id(engine)
    other_batch = dict(first, entity_id="MSFT")           # across batches: already stored
    in_batch_a = _valid(user, entity_id="NVDA")
    in_batch_b = dict(in_batch_a, ts=in_batch_a["ts"] - 60, action="trade", weight=10.0)  # same batch
    _add(redis_client, [{"e": json.dumps(e)} for e in (first, other_batch, in_batch_a, in_batch_b, in_batch_a)])
    _drain_all(redis_client)
    assert _stored(engine, user) == {first["event_id"], in_batch_a["event_id"]}
    with engine.connect() as c:
        rows = c.execute(text("SELECT entity_id, event_count FROM ingest_interests WHERE user_id = :u "
                              "ORDER BY entity_id"), {"u": user}).all()
    assert [tuple(r) for r in rows] == [("AAPL", 1), ("NVDA", 1)]  # nothing overwritten, nothing counted twice
    dead = _dead_since(engine, mark)
    assert len(dead) == 2 and all(d["field"] == "event_id" for d in dead)
    reasons = sorted(d["reason"] for d in dead)
    assert any("differs in: entity_id" in r for r in reasons)
    assert any("differs in: action, weight, ts" in r for r in reasons)


@pytest.fixture()
def refusing_trigger(engine):
    """A real PostgreSQL fault the validator cannot foresee: a trigger raising internal_error (XX000)
    for one entity, as a corrupt index or a bug in an extension would."""
    with engine.begin() as c:
        c.execute(text("""
            CREATE FUNCTION qp_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.entity_id = 'POISON' THEN RAISE EXCEPTION 'simulated fault' USING ERRCODE = 'XX000'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER qp_test_refuse BEFORE INSERT ON ingest_events FOR EACH ROW EXECUTE FUNCTION qp_test_refuse();
        """))
    yield
    with engine.begin() as c:
        c.execute(text("DROP TRIGGER qp_test_refuse ON ingest_events; DROP FUNCTION qp_test_refuse();"))


def test_a_batch_postgresql_refuses_for_an_unexpected_reason_is_bisected(
        workers, engine, redis_client, refusing_trigger):
    user = new_user()
    good = [_valid(user) for _ in range(300)]
    bad = [_valid(user, entity_id="POISON") for _ in range(3)]
    entries = good[:100] + bad[:1] + good[100:200] + bad[1:] + good[200:]
    mark = _max_dead_id(engine)
    _add(redis_client, [{"e": json.dumps(e)} for e in entries])
    _drain_all(redis_client)
    assert _stored(engine, user) == {e["event_id"] for e in good}
    dead = _dead_since(engine, mark)
    assert len(dead) == 3 and all("simulated fault" in d["reason"] for d in dead)
    with engine.connect() as c:
        assert c.execute(text("SELECT sum(event_count) FROM ingest_interests WHERE user_id = :u"),
                         {"u": user}).scalar_one() == 300


def test_a_fault_of_the_database_itself_dead_letters_nothing(workers, engine, redis_client):
    """Every write refused (as a revoked privilege or a full disk would): the events are not the
    culprits, so none is dead-lettered; they wait in the stream and are all stored once it is fixed."""
    user = new_user()
    good = [_valid(user) for _ in range(40)]
    with engine.begin() as c:
        c.execute(text("""
            CREATE FUNCTION qp_test_refuse_all() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'simulated: permission denied' USING ERRCODE = '42501'; END $$;
            CREATE TRIGGER qp_test_refuse_all BEFORE INSERT ON ingest_events
            FOR EACH ROW EXECUTE FUNCTION qp_test_refuse_all();
        """))
    mark = _max_dead_id(engine)
    try:
        _add(redis_client, [{"e": json.dumps(e)} for e in good])
        for _ in range(2):
            with pytest.raises(Exception, match="permission denied"):
                app.tasks["ingest.drain"].apply_async(ignore_result=False).get(timeout=120)
        assert _dead_since(engine, mark) == [] and _stored(engine, user) == set()
        assert redis_client.xpending(STREAM, GROUP)["pending"] + redis_client.xlen(STREAM) > 0
    finally:
        with engine.begin() as c:
            c.execute(text("DROP TRIGGER qp_test_refuse_all ON ingest_events; DROP FUNCTION qp_test_refuse_all();"))
    _drain_all(redis_client)
    assert _stored(engine, user) == {e["event_id"] for e in good} and _dead_since(engine, mark) == []
