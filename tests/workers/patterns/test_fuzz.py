"""Fuzz of the live path through a real patterns worker (issue #9: >= 10,000 bad inputs per entry
point, mixed with valid ones): 0 worker crashes, 0 stuck queues, every valid bar stored, every
bad one dead-lettered with a field the input really broke.

Values are drawn by hypothesis into pools (``fuzz_inputs.Pools``) and combined by a seeded RNG
into the inputs, which are sent as real tasks in bulk (one hypothesis example and one Celery
round trip per input would take most of an hour).
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid

import pytest
from sqlalchemy import text

from tests.support import WorkerProcess
from tests.workers.patterns.fuzz_inputs import Pools

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
N_BAD = int(os.environ.get("QP_FUZZ_BAD", "10000"))  # the issue asks >= 10,000; lower only to iterate locally


@pytest.fixture(scope="module")
def pools():
    return Pools(seed=9)


@pytest.fixture(scope="module")
def fuzz_workers(workers):
    """The session's patterns worker plus one with 4 processes: commits (fsync) of dead letters
    overlap instead of queueing one by one."""
    extra = WorkerProcess("patterns", concurrency=4, name="patterns-fuzz").start()
    try:
        yield [workers["patterns"], extra]
    finally:
        extra.stop()


def _single_inputs(p: Pools) -> list[tuple]:
    """(symbol, timeframe, bar, fields an error may name) for N_BAD bad on_bar calls."""
    out = []
    for _ in range(N_BAD):
        tf = p.rng.choice(["1d", "1min"])
        where = p.rng.choice(["bar"] * 8 + ["symbol", "timeframe"])
        if where == "symbol":
            out.append((p.rng.choice(p.symbols), tf, p.good_bar(tf), {"symbol"}))
        elif where == "timeframe":
            out.append(("FZT", p.rng.choice(p.timeframes), p.good_bar("1d"), {"timeframe"}))
        else:
            bar, fields = p.bad_bar(tf)
            out.append(("FZB", tf, bar, fields))
    return out


def _run_all(redis_client, task: str, args: list[tuple], timeout: float = 1000) -> list[dict]:
    """Send every call, then read the results straight from the result store.

    Through the app, each send subscribes to its result channel (~17 ms a send on the shared
    machine); a bare sender app has no result backend, and the worker stores results as usual.
    """
    from celery import Celery

    sender = Celery("fuzz-sender", broker=os.environ["REDIS_URL"])
    ids = [str(uuid.uuid4()) for _ in args]
    with sender.producer_or_acquire() as producer:
        for task_id, a in zip(ids, args):
            sender.send_task(task, args=list(a), queue="patterns", task_id=task_id, producer=producer)
    keys = [f"celery-task-meta-{i}" for i in ids]
    deadline = time.monotonic() + timeout
    while True:
        raw = [v for k in range(0, len(keys), 1000) for v in redis_client.mget(keys[k:k + 1000])]
        metas = [None if v is None else json.loads(v) for v in raw]
        done = [m is not None and m["status"] in ("SUCCESS", "FAILURE") for m in metas]
        if all(done) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    missing = done.count(False)
    assert missing == 0, f"{missing} of {len(keys)} tasks never finished (a stuck queue?)"
    failed = [m for m in metas if m["status"] != "SUCCESS"]
    assert not failed, f"{len(failed)} tasks failed, e.g. {failed[:3]}"
    return [m["result"] for m in metas]


def _worker_children(workers) -> set[int]:
    return {pid for w in workers for pid in w.pids()}


def _dead_letter_fields(engine, source: str, since: int) -> list[tuple[str, str]]:
    with engine.connect() as c:
        return c.execute(text("SELECT field, reason FROM dead_letters WHERE source = :s AND id > :i ORDER BY id"),
                         {"s": source, "i": since}).all()


def _since(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT COALESCE(max(id), 0) FROM dead_letters")).scalar()


def _assert_idle_queue(redis_client, celery_app) -> None:
    assert redis_client.llen("patterns") == 0, "tasks left on the patterns queue"
    assert celery_app.send_task("patterns.ping", queue="patterns").get(timeout=30)["pool"] == "patterns"


def _good_rows(p: Pools, n: int, tag: str) -> list[tuple[str, dict]]:
    """n valid bars, each of a fresh symbol (so each must be stored exactly as sent)."""
    return [(f"{tag}{i:04d}", p.good_bar("1d")) for i in range(n)]


def _stored(engine, symbols: list[str]) -> dict[str, tuple]:
    with engine.connect() as c:
        rows = c.execute(text("SELECT symbol, extract(epoch FROM ts), open, high, low, close, volume "
                              "FROM market_bars WHERE symbol = ANY(:s)"), {"s": symbols}).all()
    return {r[0]: tuple(float(x) for x in r[1:]) for r in rows}


def _same(bar: dict, row: tuple) -> bool:
    return row == (bar["ts"], bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"])


def test_fuzz_on_bar(fuzz_workers, engine, redis_client, celery_app, pools):
    bad = _single_inputs(pools)
    tag = "FZ" + uuid.uuid4().hex[:3].upper()
    good = _good_rows(pools, 1000, tag)
    before, start = _worker_children(fuzz_workers), _since(engine)
    t0 = time.monotonic()
    specs = bad + [(s, "1d", b, None) for s, b in good]
    outs = _run_all(redis_client, "patterns.on_bar", [(s, tf, b) for s, tf, b, _ in specs])
    print(f"on_bar: {len(specs)} tasks sent and done in {time.monotonic() - t0:.1f} s")
    wrong = []
    for out, spec in zip(outs, specs):
        fields = spec[3]
        if fields is None:
            if "rejected" in out:
                wrong.append(("valid bar refused", spec, out))
        elif out.get("field") not in fields:
            wrong.append(("bad input not refused by its field", spec, out))
    assert not wrong, f"{len(wrong)} wrong, e.g. {wrong[:5]}"
    kept = _dead_letter_fields(engine, "patterns.on_bar", start)
    assert len(kept) == len(bad) and all(f and r.startswith(f"{f}: ") for f, r in kept)
    stored = _stored(engine, [s for s, _ in good])
    assert len(stored) == len(good) and all(_same(b, stored[s]) for s, b in good)
    assert _worker_children(fuzz_workers) == before, "a worker process died and was replaced"
    _assert_idle_queue(redis_client, celery_app)


def _batches(p: Pools, tag: str) -> list[tuple[object, object, dict, int]]:
    """(timeframe, bars, {key: fields or None}, bad count) for on_bars calls holding N_BAD bad inputs."""
    calls: list[tuple] = []
    counter = itertools.count()
    while sum(c[3] for c in calls) < N_BAD:
        if len(calls) % 20 == 19:  # the call as a whole is wrong
            if p.rng.random() < 0.5:
                calls.append((p.rng.choice(p.timeframes), {"FZX": p.good_bar("1d")}, {None: {"timeframe"}}, 1))
            else:
                calls.append(("1d", p.rng.choice(p.values["shape"]), {None: {"bars"}}, 1))
            continue
        tf = p.rng.choice(["1d", "1min"])
        bars, expect = {}, {}
        for _ in range(p.rng.randint(5, 10)):
            key = f"{tag}{next(counter):05d}"
            bars[key], expect[key] = p.good_bar(tf), None
        for _ in range(40):
            symbol = p.rng.choice(p.symbols)
            if p.rng.random() < 0.3 and isinstance(symbol, str) and symbol not in bars:
                bars[symbol], expect[symbol] = p.good_bar(tf), {"symbol"}
            else:
                key = f"{tag}{next(counter):05d}"
                bars[key], expect[key] = p.bad_bar(tf)
        calls.append((tf, bars, expect, sum(v is not None for v in expect.values())))
    return calls


def test_fuzz_on_bars(fuzz_workers, engine, redis_client, celery_app, pools):
    tag = "FY" + uuid.uuid4().hex[:3].upper()
    calls = _batches(pools, tag)
    n_bad = sum(c[3] for c in calls)
    assert n_bad >= N_BAD, n_bad
    before, start = _worker_children(fuzz_workers), _since(engine)
    outs = _run_all(redis_client, "patterns.on_bars", [(tf, bars) for tf, bars, _, _ in calls])
    wrong, good = [], {}
    for out, (tf, bars, expect, _) in zip(outs, calls):
        if None in expect:  # the call as a whole (no symbol key can be None: JSON keys are strings)
            if out.get("field") not in expect[None]:
                wrong.append(("bad call accepted", tf, out))
            continue
        for key, fields in expect.items():
            reason = out["rejected"].get(key)
            if fields is None:
                good[key] = bars[key]
                if reason is not None:
                    wrong.append(("valid bar refused", key, bars[key], reason))
            elif reason is None or reason.split(":", 1)[0] not in fields:
                wrong.append(("bad bar not refused by its field", key, bars[key], reason))
    assert not wrong, f"{len(wrong)} wrong, e.g. {wrong[:5]}"
    kept = _dead_letter_fields(engine, "patterns.on_bars", start)
    assert len(kept) == n_bad and all(f and r.startswith(f"{f}: ") for f, r in kept)
    stored = _stored(engine, list(good))
    assert len(stored) == len(good) and all(_same(b, stored[s]) for s, b in good.items())
    assert _worker_children(fuzz_workers) == before, "a worker process died and was replaced"
    _assert_idle_queue(redis_client, celery_app)
