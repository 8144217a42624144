"""`quantpipe data load-prices` and `quantpipe patterns ...` as an operator runs them (subprocesses)."""

import json
import os
import re
import uuid

from sqlalchemy import text

from tests.support import ROOT, run_cli
from workers.patterns.publisher import CHANNEL


def test_load_prices_command_reports_counts(engine):
    out = run_cli("data", "load-prices", str(ROOT / "data/prices/daily"), "--symbols", "KO,PEP")
    assert "bars loaded" in out.stdout
    with engine.connect() as c:
        n = c.execute(text("SELECT count(DISTINCT symbol), count(*) FROM market_bars WHERE symbol IN ('KO','PEP')")).one()
    assert n[0] == 2 and f"{n[1]:,}" in out.stdout
    bad = run_cli("data", "load-prices", "/nonexistent/prices", check=False)
    assert bad.returncode != 0 and "does not exist" in bad.stderr


def test_load_prices_names_the_file_and_line_of_a_file_that_is_not_prices(engine, tmp_path):
    readme = run_cli("data", "load-prices", str(ROOT / "README.md"), check=False)
    assert readme.returncode == 1 and "Traceback" not in readme.stderr + readme.stdout
    assert re.search(r"README\.md: line \d+: ", readme.stderr), readme.stderr
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "KO.csv.gz").write_bytes((ROOT / "data/prices/daily/KO.csv.gz").read_bytes())
    (mixed / "BIN.csv").write_bytes(b"timestamp,open\n2021-04-01,\xff\n")
    out = run_cli("data", "load-prices", str(mixed), check=False, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 1 and "BIN.csv: line 2: not UTF-8" in out.stderr
    assert "1 file(s) could not be read" in out.stderr and "1 loaded" in out.stderr
    assert "bars loaded" in out.stdout  # the good file still loaded


def test_test_event_publishes_one_event_and_monitor_shows_its_flow(engine, redis_client):
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        out = run_cli("patterns", "test-event", "--symbol", "CLITEST", "--pattern", "Hammer", "--confidence", "0.77",
                      env={**os.environ, "COLUMNS": "80"})
        flow_id = out.stdout.strip().splitlines()[-1].split()[1]
        uuid.UUID(flow_id)
        for shown in ("CLITEST", "Hammer", "0.77", "daily / 1d", "subscribers reached", "log row -> publish"):
            assert shown in out.stdout, (shown, out.stdout)
        assert max(len(line) for line in out.stdout.splitlines()) <= 80
        msg = None
        for _ in range(50):
            m = sub.get_message(timeout=0.1)
            if m and m["type"] == "message":
                msg = json.loads(m["data"])
                break
    finally:
        sub.close()
    assert msg["flow_id"] == flow_id and msg["data"]["pattern"] == "Hammer" and msg["data"]["confidence"] == 0.77
    with engine.connect() as c:
        assert c.execute(text("SELECT checkpoint FROM integration_events WHERE flow_id = :f"),
                         {"f": flow_id}).scalar() == "PATTERN_PUBLISHED"
    mon = run_cli("patterns", "monitor", "--limit", "50", env={**os.environ, "COLUMNS": "240"})
    assert "heartbeat age" in mon.stdout and "CLITEST" in mon.stdout and "PATTERN_PUBLISHED" in mon.stdout


def test_scan_names_missing_symbols_and_help_is_clear():
    bad = run_cli("patterns", "scan", "--symbols", "NOPE", check=False)
    assert bad.returncode != 0 and "NOPE" in bad.stderr and "load-prices" in bad.stderr
    helptext = run_cli("patterns", "--help").stdout
    for cmd in ("scan", "replay", "test-event", "monitor", "listen"):
        assert cmd in helptext


def test_scan_wait_and_replay_inline(workers, engine):
    from loaders.prices import load_prices

    load_prices(engine, [ROOT / "data/prices/daily/KO.csv.gz"])
    wide = {**os.environ, "COLUMNS": "240"}
    quick = run_cli("patterns", "scan", "--symbols", "KO", "--since", "2021-04-20", env=wide)
    assert "1 symbol(s) x daily, bars after 2021-04-20" in quick.stdout and "patterns monitor" in quick.stdout
    out = run_cli("patterns", "scan", "--symbols", "KO", "--since", "2021-04-01", "--wait", env=wide)
    assert "enqueued 1 scan task" in out.stdout and "KO" in out.stdout
    with engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM pattern_detections WHERE symbol = 'KO' AND tier = 'daily' "
                           "AND bar_ts > '2021-04-01'")).scalar()
    assert n > 0
    # replaying those same days through the live path publishes nothing twice
    rep = run_cli("patterns", "replay", "--symbols", "KO", "--timeframe", "1d", "--start", "2021-04-05",
                  "--speed", "0", "--inline", env=wide)
    assert "replayed 13 bar(s), published 0 event(s)" in rep.stdout
    bad = run_cli("patterns", "replay", "--symbols", "KO", "--speed", "-1", check=False)
    assert bad.returncode != 0 and "--speed" in bad.stderr
