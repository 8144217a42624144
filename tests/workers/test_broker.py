"""The atomic fetch (workers/broker.py): a process SIGKILLed between the pop and the unacked
record loses nothing; kombu's own transport, killed at the same point, loses the message.

The victim is a real process consuming from the session's Redis; it kills itself with
SIGKILL at the exact point between the two steps (a patched method), so the window is hit
every time instead of by chance.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import kombu
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers.broker import DEAD_LETTER, INFLIGHT_INDEX, INFLIGHT_SOURCE

VICTIM = textwrap.dedent("""
    import os, signal, sys, kombu
    url, queue, mode = sys.argv[1:4]
    transport = "workers.broker:Transport"
    if mode == "kombu":  # stock transport: die after BRPOP, before its unacked record
        import kombu.transport.redis as kr
        kr.QoS.append = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        transport = "redis"
    else:
        import workers.broker as b
        record = b.Channel._record_fetched
        def patched(self, *a, **k):
            print("fetched", flush=True)
            os.kill(os.getpid(), signal.SIGKILL if mode == "kill" else signal.SIGSTOP)
            return record(self, *a, **k)  # after SIGCONT: the stalled channel's record
        b.Channel._record_fetched = patched
    delivered = []
    conn = kombu.Connection(url, transport=transport, transport_options={"priority_steps": [0]})
    q = kombu.Queue(queue, kombu.Exchange(queue, type="direct"), routing_key=queue)
    with conn, conn.Consumer(q, callbacks=[lambda body, m: (delivered.append(body), m.ack())]):
        for _ in range(2):
            try:
                conn.drain_events(timeout=1)
            except Exception:
                pass
    print("delivered", len(delivered), flush=True)
""")


def _queue(name):
    return kombu.Queue(name, kombu.Exchange(name, type="direct"), routing_key=name)


def _publish(url, name, body, transport="workers.broker:Transport"):
    with kombu.Connection(url, transport=transport, transport_options={"priority_steps": [0]}) as conn:
        conn.Producer().publish(body, exchange=_queue(name).exchange, routing_key=name, declare=[_queue(name)],
                                serializer="json")


def _consume(url, name, seconds, **options):
    """Bodies a live consumer gets in ``seconds``; short polls so the restore sweep runs."""
    got = []
    opts = {"priority_steps": [0], "unacked_restore_throttle": 1, "inflight_stale_after": 1, **options}
    with kombu.Connection(url, transport="workers.broker:Transport", transport_options=opts) as conn:
        with conn.Consumer(_queue(name), callbacks=[lambda body, m: (got.append(body), m.ack())]):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    conn.drain_events(timeout=0.2)
                except (TimeoutError, OSError):
                    pass
    return got


def _victim(url, name, mode):
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", VICTIM, url, name, mode], stdout=subprocess.PIPE, text=True,
                            env=env)


def _inflight_of(redis_client, name):
    return [k for k, v in redis_client.hgetall(INFLIGHT_SOURCE).items() if v.decode() == name]


def _tags(redis_client):
    return {t.decode() for t in redis_client.hkeys("unacked")}


@pytest.fixture()
def name(redis_client):
    q = f"broker-test-{uuid.uuid4().hex[:8]}"
    yield q
    redis_client.delete(q)


def test_kombu_transport_killed_between_pop_and_record_loses_the_message(redis_url, redis_client, name):
    """The gap workers/broker.py closes, shown with the same kill, so the next test is not vacuous."""
    _publish(redis_url, name, {"n": 1}, transport="redis")
    before = _tags(redis_client)
    victim = _victim(redis_url, name, "kombu")
    assert victim.wait(30) == -signal.SIGKILL
    assert redis_client.llen(name) == 0 and _tags(redis_client) == before  # in neither: lost
    assert _consume(redis_url, name, 2.5) == []


def test_killed_between_pop_and_record_the_message_comes_back_once(redis_url, redis_client, name):
    _publish(redis_url, name, {"n": 1})
    victim = _victim(redis_url, name, "kill")
    assert victim.stdout.readline().strip() == "fetched"
    assert victim.wait(30) == -signal.SIGKILL
    assert redis_client.llen(name) == 0
    (inflight,) = _inflight_of(redis_client, name)
    assert redis_client.llen(inflight) == 1  # not lost: held in Redis while no one owns it
    assert _consume(redis_url, name, 3) == [{"n": 1}]  # moved back once the owner is stale
    assert redis_client.llen(inflight) == 0 and not _inflight_of(redis_client, name)
    assert redis_client.zscore(INFLIGHT_INDEX, inflight) is None
    assert _consume(redis_url, name, 1.5) == []  # exactly once


def test_a_stalled_fetch_swept_meanwhile_is_not_delivered_twice(redis_url, redis_client, name):
    _publish(redis_url, name, {"n": 2})
    victim = _victim(redis_url, name, "stall")
    try:
        assert victim.stdout.readline().strip() == "fetched"  # popped, then SIGSTOPped before its record
        assert _consume(redis_url, name, 2.5) == [{"n": 2}]  # the sweep gave it to a live consumer
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    out, _ = victim.communicate(timeout=30)
    assert out.split() == ["delivered", "0"]  # the resumed channel found it moved and let it go
    assert _consume(redis_url, name, 1.5) == []


def test_an_unreadable_entry_is_dead_lettered_and_the_next_message_still_delivered(redis_url, redis_client, name):
    _publish(redis_url, name, {"n": 0})  # declares the queue
    assert _consume(redis_url, name, 1) == [{"n": 0}]
    redis_client.lpush(name, b"\xffnot a kombu message")
    _publish(redis_url, name, {"n": 3})
    assert _consume(redis_url, name, 2) == [{"n": 3}]
    dead = [e for e in redis_client.lrange(DEAD_LETTER, 0, -1) if name.encode() in e]
    assert len(dead) == 1 and b"not a kombu message" in dead[0]
    assert all(redis_client.llen(k) == 0 for k in _inflight_of(redis_client, name))
    redis_client.lrem(DEAD_LETTER, 0, dead[0])


def test_every_pool_worker_fetches_atomically(workers, redis_client):
    """The real pool workers register an inflight list for their own queue (one key each)."""
    from workers.routing import POOLS

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        sources = {v.decode() for v in redis_client.hvals(INFLIGHT_SOURCE)}
        if set(POOLS) <= sources:
            break
        time.sleep(0.5)
    assert set(POOLS) <= sources


def test_a_celery_worker_killed_in_the_fetch_window_loses_nothing_and_the_task_runs_once(
        celery_app, redis_client, name, tmp_path):
    """Real Celery workers, their own event loop: the victim dies between the fetch and the record,
    the message waits in its inflight list, and a second worker's sweep hands it on: run once."""
    from kombu import Exchange, Queue

    from tests.support import WorkerProcess

    mark, key = tmp_path / "killed-in-window", f"{name}:runs"
    env = {**os.environ, "BROKER_VICTIM_QUEUE": name}
    victim = WorkerProcess(name, pool="solo", env={**env, "BROKER_VICTIM_MARK": str(mark)}, name="broker-victim",
                           app="tests.workers.broker_victim")
    victim.start()
    try:
        celery_app.send_task("broker_victim.touch", args=[key], routing_key=name,
                             queue=Queue(name, Exchange(name, type="direct"), routing_key=name))
        assert victim.proc.wait(30) == -signal.SIGKILL
    finally:
        victim.kill()
    assert redis_client.llen(name) == 0
    (inflight,) = _inflight_of(redis_client, name)
    assert mark.read_text() == f"{name} {inflight.decode()}"  # killed by the hook, between the two steps
    (item,) = redis_client.lrange(inflight, 0, -1)
    assert json.loads(item)["headers"]["task"] == "broker_victim.touch"  # held, not lost
    with WorkerProcess(name, pool="solo", env=env, name="broker-survivor", app="tests.workers.broker_victim"):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and redis_client.get(key) is None:
            time.sleep(0.1)
        time.sleep(1.5)  # a second run would show by now
        assert redis_client.get(key) == b"1"
    assert redis_client.llen(inflight) == 0 and redis_client.llen(name) == 0
    redis_client.delete(key)


def test_held_counts_a_dead_channels_inflight_messages_and_the_dead_letters(redis_url, redis_client, name):
    from workers.broker import held

    _publish(redis_url, name, {"n": 4})
    dead_before = held(redis_client)["dead_letter"]
    victim = _victim(redis_url, name, "kill")
    assert victim.wait(30) == -signal.SIGKILL
    assert held(redis_client)["inflight"][name] == 1
    redis_client.lpush(name, b"[1, 2")
    assert _consume(redis_url, name, 3) == [{"n": 4}]
    after = held(redis_client)
    assert after["inflight"].get(name, 0) == 0 and after["dead_letter"] == dead_before + 1
    redis_client.lpop(DEAD_LETTER)


_BAD = st.one_of(
    st.binary(min_size=1, max_size=64).filter(lambda b: not b.strip().startswith((b"{", b"["))),  # not JSON
    st.sampled_from([b"[1, 2", b"null", b"[]", b"{}", b'{"properties": {}}', b'"text"',
                     b'{"properties": {"delivery_tag": "x"}}', b'{"body": "e30=", "properties": null}',
                     b'{"body": "!!not base64", "content-type": "application/json", "properties": {"delivery_tag": '
                     b'"t", "body_encoding": "base64", "delivery_info": {"exchange": "", "routing_key": ""}}}']),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3).map(lambda d: json.dumps(d).encode()),
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(entries=st.lists(st.one_of(st.integers(0, 10**6), _BAD), min_size=1, max_size=8))
def test_fuzz_good_messages_once_each_bad_entries_dead_lettered(redis_url, redis_client, entries):
    """Any mix of kombu messages and garbage on a queue: each message delivered once, each garbage
    entry kept in the dead letter, none left in flight, and the next good one never blocked."""
    name = f"broker-fuzz-{uuid.uuid4().hex[:8]}"
    goods = [e for e in entries if isinstance(e, int)]
    dead_before = redis_client.llen(DEAD_LETTER)
    got = []
    opts = {"priority_steps": [0], "polling_interval": 0.05}  # BLMOVE waits 50 ms: a close waits out one
    with kombu.Connection(redis_url, transport="workers.broker:Transport", transport_options=opts) as conn:
        producer = conn.Producer()
        for e in entries:
            if isinstance(e, int):
                producer.publish({"n": e}, exchange=_queue(name).exchange, routing_key=name, declare=[_queue(name)],
                                 serializer="json")
            else:
                redis_client.lpush(name, e)
        with conn.Consumer(_queue(name), callbacks=[lambda body, m: (got.append(body["n"]), m.ack())]):
            end = time.monotonic() + 5
            while time.monotonic() < end and (len(got) < len(goods) or redis_client.llen(name)):
                try:
                    conn.drain_events(timeout=0.1)
                except (TimeoutError, OSError):
                    pass
    assert got == goods  # FIFO, once each, garbage in between blocked nothing
    assert redis_client.llen(DEAD_LETTER) - dead_before == len(entries) - len(goods)
    assert redis_client.llen(name) == 0 and not _inflight_of(redis_client, name)
    redis_client.delete(name)
    redis_client.ltrim(DEAD_LETTER, len(entries) - len(goods), -1)  # this example's, the newest


def test_a_sweep_keeps_a_live_channels_empty_list_registered_until_forget_after(redis_url, redis_client, name):
    """A sweeper whose stale-after is shorter than a live channel's heartbeat must not leave that
    channel fetching into an unregistered list (a kill there would strand the message)."""
    opts = {"priority_steps": [0], "polling_interval": 0.05}
    with kombu.Connection(redis_url, transport="workers.broker:Transport", transport_options=opts) as live:
        with live.Consumer(_queue(name), callbacks=[lambda body, m: m.ack()]):
            try:
                live.drain_events(timeout=0.2)  # its first BLMOVE registers its list
            except (TimeoutError, OSError):
                pass
            (inflight,) = _inflight_of(redis_client, name)
            for forget, kept in ((3600, True), (0, False)):
                with kombu.Connection(redis_url, transport="workers.broker:Transport",
                                      transport_options={"inflight_stale_after": 0,
                                                         "inflight_forget_after": forget}) as sweeper:
                    assert sweeper.default_channel.restore_inflight() == 0
                assert (redis_client.hget(INFLIGHT_SOURCE, inflight) is not None) is kept
