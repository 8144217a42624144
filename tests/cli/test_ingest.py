"""`quantpipe ingest simulate|stats|drain` in a subprocess against the test servers."""

import os

from tests.workers.ingestion.helpers import make_license_key, new_user
from tests.support import run_cli


def test_simulate_drain_and_stats():
    env = dict(os.environ, INGEST_LICENSE_KEY=make_license_key())
    first = new_user()
    out = run_cli("ingest", "simulate", "--users", "20", "--events", "25", "--first-user", str(first), "--seed", "1",
                  "--drain", env=env).stdout
    assert "track() latency over 500 events" in out and "p99 ms" in out
    assert "committed: 500 of 500" in out
    stats = run_cli("ingest", "stats", "--top", "5", env=env).stdout
    for label in ("users", "events per user", "most-tracked entities", "top users", "licence", "cache hit rate",
                  "dead letters", "licensed - Test Co (prod)"):
        assert label in stats, label


def test_simulate_refuses_bad_arguments_and_licences():
    bad = run_cli("ingest", "simulate", "--users", "0", check=False)
    assert bad.returncode == 2 and "--users" in bad.stderr
    env = dict(os.environ, INGEST_LICENSE_KEY="SW-PROD-garbage.sig")
    refused = run_cli("ingest", "simulate", "--users", "1", "--events", "1", env=env, check=False)
    assert refused.returncode == 1 and "licence key" in refused.stderr and "Traceback" not in refused.stderr


def test_drain_command():
    out = run_cli("ingest", "drain", "--timeout", "5").stdout
    assert "batch(es)" in out
