"""Right to erasure against a drain batch that is already in flight (real concurrent transactions)."""

from __future__ import annotations

import threading
import time
import uuid

from sqlalchemy import text

from workers.ingestion import events as ev
from workers.ingestion import erasure, store
from workers.ingestion.batch import Reject
from tests.workers.ingestion.helpers import new_user

HALF_LIFE = 14 * 86400.0


def _event(user, entity="AAPL", action="view", ts=None):
    return {"event_id": str(uuid.uuid4()), "user_id": user, "entity_id": entity, "action": action,
            "weight": ev.ACTIONS[action], "ts": ts or time.time(), "metadata": {}}


def _rows(engine, user) -> dict[str, int]:
    with engine.connect() as c:
        return {t: c.execute(text(f"SELECT count(*) FROM {t} WHERE user_id = :u"), {"u": user}).scalar_one()
                for t in ("ingest_events", "ingest_interests")}


def _run(target, *args):
    out: dict = {}

    def body():
        try:
            out["value"] = target(*args)
        except BaseException as exc:  # pragma: no cover - reported by the assertion below
            out["error"] = exc

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, out


def test_delete_user_waits_for_a_batch_in_flight_and_removes_it(sw, engine):
    """A drain transaction has inserted the user's batch but not committed when delete_user runs;
    it commits afterwards. Without the lock the deletion misses those rows and they survive."""
    user, other = new_user(), new_user()
    batch = [_event(user, ("AAPL", "MSFT")[i % 2], ts=time.time() - 5) for i in range(200)]
    batch += [_event(other, ts=time.time() - 5) for _ in range(10)]
    conn = engine.connect()
    tx = conn.begin()
    try:
        assert store.write_events(conn, batch, HALF_LIFE)[0] == 210
        deleter, out = _run(sw.delete_user, user)
        time.sleep(1.0)
        blocked = deleter.is_alive()  # the erasure must wait for the in-flight batch
        tx.commit()
    finally:
        conn.close()
    deleter.join(30)
    assert not deleter.is_alive() and "error" not in out, out
    assert _rows(engine, user) == {"ingest_events": 0, "ingest_interests": 0}
    assert blocked
    assert out["value"]["ingest_events"] == 200 and out["value"]["ingest_interests"] == 2
    assert _rows(engine, other) == {"ingest_events": 10, "ingest_interests": 1}  # others untouched


def test_batches_written_after_the_erasure_skip_older_events_and_keep_newer(sw, engine):
    """A batch read before the erasure but written after it brings nothing back; events the user
    generates after the erasure are new data and are kept."""
    user = new_user()
    before = [_event(user, ts=time.time() - 60) for _ in range(5)]
    with engine.begin() as c:
        store.write_events(c, before[:2], HALF_LIFE)
    sw.delete_user(user)
    time.sleep(0.01)
    after = [_event(user, "NVDA", "trade")]
    with engine.begin() as c:
        n, users, _ = store.write_events(c, before[2:] + after, HALF_LIFE)
    assert (n, users) == (1, [user])
    with engine.connect() as c:
        rows = c.execute(text("SELECT entity_id, event_count FROM ingest_interests WHERE user_id = :u"),
                         {"u": user}).all()
    assert [tuple(r) for r in rows] == [("NVDA", 1)]
    assert _rows(engine, user)["ingest_events"] == 1


def test_dead_letters_of_an_erased_user_are_not_kept(sw, engine):
    user = new_user()
    sw.delete_user(user)
    with engine.begin() as c:
        ts = time.time() - 30
        n = store.dead_letter(c, [Reject({"user_id": user, "action": "nope", "ts": ts}, "action", "x", user, ts),
                                  Reject({"user_id": str(user), "action": "nope"}, "action", "x", str(user))],
                              "test")
    with engine.connect() as c:
        kept = c.execute(text("SELECT count(*) FROM dead_letters WHERE pool = 'ingest' "
                              "AND payload ->> 'user_id' = :u"), {"u": str(user)}).scalar_one()
    assert kept == 0 and n == 0


def test_concurrent_erasures_with_a_batch_in_flight_do_not_deadlock(sw, engine):
    user = new_user()
    conn = engine.connect()
    tx = conn.begin()
    try:
        store.write_events(conn, [_event(user, ts=time.time() - 5) for _ in range(20)], HALF_LIFE)
        runs = [_run(sw.delete_user, user) for _ in range(3)]
        time.sleep(0.5)
        tx.commit()
    finally:
        conn.close()
    for t, out in runs:
        t.join(30)
        assert not t.is_alive() and "error" not in out, out
    assert sum(out["value"]["ingest_events"] for _, out in runs) == 20
    assert _rows(engine, user) == {"ingest_events": 0, "ingest_interests": 0}
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM ingest_erasures WHERE user_key = :k"),
                         {"k": erasure.erasure_key(str(user))}).scalar_one() == 1


def test_profile_read_racing_an_erasure_is_not_left_in_the_cache(sw, engine, monkeypatch, redis_client):
    """get_profile reads, an erasure runs (and clears the cache) before get_profile stores what it
    read: the stored profile must be taken back out."""
    from workers.ingestion import profile as client_mod
    from workers.ingestion import cache as cache_mod

    user = new_user()
    with engine.begin() as c:
        store.write_events(c, [_event(user, ts=time.time() - 5)], HALF_LIFE)
    real = client_mod.load_profile

    def read_then_erasure(conn, user_id, half_life):
        profile = real(conn, user_id, half_life)
        sw.delete_user(user_id)  # lands between our read and our cache set
        return profile

    monkeypatch.setattr(client_mod, "load_profile", read_then_erasure)
    assert sw.get_profile(user)["library"]  # the caller got what was read
    assert all(sw.cache.get(k) is None for k in cache_mod.user_keys(user))
    assert not [k for k in redis_client.keys("shadowwatch:*") if str(user) in k.decode()]


def test_holdings_written_while_an_erasure_starts_are_deleted_too(sw, engine, monkeypatch):
    """The client's own writes (holdings here; login attempts the same way) take the writers' lock:
    a set_holdings that has written but not committed when delete_user starts is deleted too."""
    user = new_user()
    written, release = threading.Event(), threading.Event()
    real = store.set_holdings

    def slow_set_holdings(conn, user_id, entity_ids):
        real(conn, user_id, entity_ids)
        written.set()
        assert release.wait(30)

    monkeypatch.setattr(store, "set_holdings", slow_set_holdings)
    writer, wout = _run(sw.set_holdings, user, ["AAPL", "MSFT"])
    assert written.wait(30)
    deleter, dout = _run(sw.delete_user, user)
    time.sleep(0.5)
    release.set()
    for t, out in ((writer, wout), (deleter, dout)):
        t.join(30)
        assert not t.is_alive() and "error" not in out, out
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM ingest_holdings WHERE user_id = :u"), {"u": user}).scalar() == 0
