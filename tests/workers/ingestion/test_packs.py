"""Packs: track_many() sends consecutive events as one stream entry (field 'b', a JSON array of up to
PACK_EVENTS events); each event in a pack is still checked on its own, a bad one dead-lettered naming
its field, and an erasure takes the user's events out of a queued pack while keeping the others'."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import orjson
from sqlalchemy import text

from tests.workers.ingestion.helpers import new_user, wait_for_events
from tests.workers.ingestion.test_batch import _add, _dead_since, _drain_all, _max_dead_id, _stored, _valid
from workers.ingestion import batch, stream


def _encoded(n: int, user: str = "7") -> list[bytes]:
    return [orjson.dumps(_valid(user, metadata={"i": i, "pad": "x" * (i % 50)})) for i in range(n)]


def test_pack_keeps_order_and_bounds_and_leaves_a_lone_event_plain():
    enc = _encoded(1000)
    packs = stream.pack(enc)
    assert [e for p in packs for e in json.loads(p)] == [json.loads(e) for e in enc]  # all, in order
    assert all(p[:1] == b"[" and len(json.loads(p)) <= stream.PACK_EVENTS and len(p) <= stream.PACK_BYTES
               for p in packs)
    assert stream.pack(enc[:1]) == enc[:1]  # one event: a plain entry, as track() sends it
    big = [orjson.dumps(_valid("7", metadata={"b": "y" * 4000})) for _ in range(40)]
    assert all(len(p) <= stream.PACK_BYTES for p in stream.pack(big)) and len(stream.pack(big)) > 1


def test_parts_of_a_read_larger_than_a_batch_never_split_an_entry():
    entries = [(f"{i}-0".encode(), {b"b": p}) for i, p in enumerate(stream.pack(_encoded(1000)))]
    entries.insert(3, (b"x-0", {b"e": orjson.dumps(_valid("8"))}))
    parts = list(batch.parts(entries, 250, max_metadata_bytes=4096, hash_ip=lambda ip: "h"))
    assert [i for ids, _ in parts for i in ids] == [eid for eid, _ in entries]
    assert sum(p.events for _, p in parts) == 1001 and all(len(p.valid) == p.events for _, p in parts)
    assert all(p.events >= 250 for _, p in parts[:-1]) and all(p.events < 350 for _, p in parts)
    assert stream._read_count(5000, 1.0) == 5000 and stream._read_count(5000, 100.0) == 50
    assert stream._read_count(10, 100.0) == 1


def test_bad_events_inside_a_pack_are_dead_lettered_naming_the_field(workers, engine, redis_client):
    user = new_user()
    good = [_valid(user) for _ in range(30)]
    bad_user = _valid(user, user_id="no spaces allowed")
    bad_ts = _valid(user, ts="yesterday")
    bad_weight = _valid(user, weight=float("nan"))
    mixed = good[:10] + [bad_user] + good[10:20] + [bad_ts, bad_weight, 42] + good[20:]
    since = _max_dead_id(engine)
    _add(redis_client, [{"b": json.dumps(mixed)},
                        {"b": '[{"event_id": "' + str(uuid.uuid4()) + '", "user_id": "' + user + '"'},  # cut off
                        {"b": json.dumps({"not": "a list", "user_id": user})},
                        {"b": "[]"}])
    _drain_all(redis_client)
    assert _stored(engine, user) == {e["event_id"] for e in good}
    dead = [d for d in _dead_since(engine, since)]
    mine = [d for d in dead if isinstance(d["payload"], dict) and d["payload"].get("event_id") in
            {bad_user["event_id"], bad_ts["event_id"], bad_weight["event_id"]}]
    assert sorted(d["field"] for d in mine) == ["ts", "user_id", "weight"]
    assert any(d["field"] == "event" and "must be a JSON object" in d["reason"] and d["payload"] in (42, "42")
               for d in dead)
    assert any(d["field"] == "event" and "not valid JSON" in d["reason"] for d in dead)
    assert sum(d["field"] == "event" and "pack entry" in d["reason"] for d in dead) >= 2  # object and empty


def test_track_many_packs_arrive_whole(workers, sw, engine):
    user = new_user()
    ids = sw.track_many([{"user_id": user, "entity_id": "NVDA", "action": "view", "metadata": {"i": i}}
                         for i in range(450)])
    assert wait_for_events(engine, [user], 450, kick=lambda: sw.drain_now(time_budget=5)) == 450
    assert _stored(engine, user) == set(ids)
    with engine.connect() as c:
        assert c.execute(text("SELECT event_count FROM ingest_interests WHERE user_id = :u"),
                         {"u": user}).scalar_one() == 450


def test_erasure_takes_the_users_events_out_of_a_queued_pack(database_url, engine, tmp_path):
    from tests.support import RedisServer
    from tests.workers.ingestion.test_privacy_on_disk import _client

    server = RedisServer(Path(tmp_path) / "redis", fsync="always").start()  # no other drain reads it
    sw = _client(database_url, server)
    try:
        erased, kept = new_user(), new_user()
        sw.track_many([{"user_id": erased if i % 3 == 0 else kept, "entity_id": "AAPL", "action": "view"}
                       for i in range(60)])
        (eid, fields), = sw.redis.xrange(stream.STREAM, min="-", max="+")
        assert list(fields) == [b"b"]  # one pack of both users' events
        assert sw.delete_user(erased)["stream_entries"] == 20
        queued = sw.redis.xrange(stream.STREAM, min="-", max="+")
        assert [i for i, _ in queued] != [eid] and len(queued) == 1
        assert erased.encode() not in queued[0][1][b"b"] and len(json.loads(queued[0][1][b"b"])) == 40
        sw.drain_now(time_budget=5)
        assert wait_for_events(engine, [kept], 40) == 40
        assert _stored(engine, erased) == set()
    finally:
        sw.close()
        server.stop()
