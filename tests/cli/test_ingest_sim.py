"""Issue 13 item 6: the seed's load-test checklist read from `quantpipe ingest stats`.

Several app processes (`quantpipe ingest simulate`, which reads profiles on every page and the
fingerprint at every login) share one Redis: the hit and miss counters add up fleet-wide, and a
process that starts after another finds the other's entries cached (multi-instance caching)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.support import ROOT, run_cli
from tests.workers.ingestion.helpers import make_license_key, new_user

READS = re.compile(r"cache reads \(this process\): ([\d,]+) - [\d.]+% hits \(([\d,]+) hits, ([\d,]+) misses\)")


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def _reads(out: str) -> tuple[int, int, int]:
    m = READS.search(out)
    assert m, out
    return _n(m.group(1)), _n(m.group(2)), _n(m.group(3))


def _kind(out: str, kind: str) -> tuple[int, int]:
    m = re.search(rf"^\s+{kind}\s+[\d.]+% \(([\d,]+) hits, ([\d,]+) misses\)", out, re.M)
    assert m, (kind, out)
    return _n(m.group(1)), _n(m.group(2))


def _fleet(redis_client) -> dict:
    from workers.ingestion.cache import fleet_stats

    return fleet_stats(redis_client)


def test_hit_rate_is_fleet_wide_and_instances_share_entries(redis_client):
    env = dict(os.environ, INGEST_LICENSE_KEY=make_license_key())
    users, first = 12, new_user()
    args = ["ingest", "simulate", "--users", str(users), "--events", "10", "--first-user", first, "--page-reads", "2",
            "--session-events", "5"]
    before = _fleet(redis_client)
    procs = [subprocess.Popen([sys.executable, "-m", "cli.main", *args, "--seed", str(i)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(out)
    during = _fleet(redis_client)
    reads = [_reads(o) for o in outs]
    assert all(r[0] == r[1] + r[2] for r in reads)
    # the fleet-wide counters are exactly the two processes' reads together
    assert during["hits"] - before["hits"] == sum(r[1] for r in reads)
    assert during["misses"] - before["misses"] == sum(r[2] for r in reads)
    assert sum(r[0] for r in reads) >= 2 * users * 10 * 2  # every page read the profile twice

    # a third instance, started after them, finds every profile the others cached
    late = run_cli(*args, "--seed", "9", "--session-events", "0", env=env).stdout
    hits, misses = _kind(late, "profile")
    assert misses == 0 and hits == users * 10 * 2

    stats = run_cli("ingest", "stats", env=env).stdout
    after = _fleet(redis_client)
    line = [ln for ln in stats.splitlines() if "cache hit rate (all instances)" in ln]
    assert line, stats
    shown = re.search(r"([\d.]+)% \(([\d,]+) hits, ([\d,]+) misses\)", line[0])
    assert (_n(shown.group(2)), _n(shown.group(3))) == (after["hits"], after["misses"])
    assert "  profile" in stats and "  fingerprint" in stats


def test_simulate_hit_rate_above_80_percent_with_drains_committing_meanwhile(redis_client, engine):
    """The seed's "Redis cache hit rate > 80 %": two app processes run the default simulate workload
    (a profile read per page, fingerprint reads at each login) while the stream is drained into
    PostgreSQL the whole time (the same drain the ingest workers run), so reads follow writes. With
    invalidation on every commit this workload read ~10 % hits; bounded staleness serves a profile
    until 20 of the user's events (default) have been committed after its read."""
    import threading
    import time

    from workers.ingestion.pool import IngestPool
    from tests.workers.ingestion.helpers import count_events

    env = dict(os.environ, INGEST_LICENSE_KEY=make_license_key())
    users, events, first = 10, 60, new_user()
    args = ["ingest", "simulate", "--users", str(users), "--events", str(events), "--first-user", first]
    stop, drained = threading.Event(), []
    pool = IngestPool()

    def drain_loop():
        while not stop.is_set():
            drained.append(pool.drain(time_budget=0.3).inserted)
            stop.wait(0.2)

    before = _fleet(redis_client)
    drainer = threading.Thread(target=drain_loop, daemon=True)
    drainer.start()
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "cli.main", *args, "--seed", str(i)], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
        ids, committed_meanwhile = [str(int(first) + i) for i in range(users)], 0
        deadline = time.monotonic() + 300
        while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
            committed_meanwhile = count_events(engine, ids)  # committed while both were still reading
            time.sleep(0.5)
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
            outs.append(out)
    finally:
        stop.set()
        drainer.join(30)
        pool.close()
    after = _fleet(redis_client)
    reads = [_reads(o) for o in outs]
    hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
    assert (hits, misses) == (sum(r[1] for r in reads), sum(r[2] for r in reads))  # counted fleet-wide
    assert hits + misses >= 2 * users * events
    # reads followed writes: a good share of the events was committed while both were still reading
    assert sum(drained) and committed_meanwhile >= users * events // 2, committed_meanwhile
    assert hits / (hits + misses) > 0.80, (hits, misses, outs)
