"""`quantpipe shadow …` end to end in subprocesses, against the session's PostgreSQL and Redis."""

from __future__ import annotations

import csv
import json
import os
import re

import numpy as np
from sqlalchemy import text

from tests.support import run_cli as _run_cli
from tests.workers.shadow.conftest import make_trades, registry_db  # noqa: F401 (fixture)


def run_cli(*args, env=None, **kw):
    """Wide terminal so rich tables are not truncated."""
    return _run_cli(*args, env={**(env or os.environ), "COLUMNS": "220"}, **kw)


def _csv(path, rows, model=None):
    cols = ["trade_id", "opened_at", "closed_at", "return", "pnl"] + (["model"] if model else [])
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        for r in rows:
            w.writerow({**{k: r[k] for k in cols if k != "model"}, **({"model": model} if model else {})})


def test_help_lists_every_command():
    out = run_cli("shadow", "--help").stdout
    for cmd in ("deploy", "status", "compare", "promote", "rollback", "history", "record-trades", "simulate",
                "checkpoint"):
        assert cmd in out
    assert "--force" in run_cli("shadow", "promote", "--help").stdout


def test_deploy_record_compare_promote_rollback_history(registry_db, tmp_path):  # noqa: F811
    rng = np.random.default_rng(0)
    run_cli("shadow", "deploy", "champ", "--type", "momentum", "--champion", "--param", "lookback=20")
    run_cli("shadow", "deploy", "chal", "--type", "momentum", "--description", "faster exits")
    bad = run_cli("shadow", "deploy", "other", "--type", "momentum", "--champion", check=False)
    assert bad.returncode == 1 and "champion" in bad.stderr
    _csv(tmp_path / "champ.csv", make_trades(0.0005 + 0.02 * rng.standard_normal(1000), prefix="c", minutes=1))
    rows = make_trades(0.0005 + 0.02 * rng.standard_normal(600), prefix="s")
    rows[3]["return"] = "abc"
    _csv(tmp_path / "chal.csv", rows, model="chal")
    out = run_cli("shadow", "record-trades", str(tmp_path / "champ.csv"), "--model", "champ").stdout
    assert re.search(r"champ\s+│\s+1000\s+│\s+0\s+│\s+0\s+│\s+1000", out), out
    out = run_cli("shadow", "record-trades", str(tmp_path / "chal.csv"), "--no-evaluate").stdout
    assert re.search(r"chal\s+│\s+599\s+│\s+0\s+│\s+1\s+│\s+599", out) and "dead_letters" in out
    again = run_cli("shadow", "record-trades", str(tmp_path / "chal.csv"), "--no-evaluate").stdout
    assert re.search(r"chal\s+│\s+0\s+│\s+599\s+│", again)          # idempotent
    out = run_cli("shadow", "compare", "chal").stdout
    assert "sequential_superiority" in out and "deflated_sharpe" in out and "decision" in out
    assert "champion trades over the same period" in out and "minimum track record:" in out
    status = run_cli("shadow", "status").stdout  # 220 columns: every column
    assert "champ" in status and "chal" in status and "P(best)" in status and "needs" in status
    narrow = _run_cli("shadow", "status", env={**os.environ, "COLUMNS": "80"}).stdout  # the secondary ones go
    assert "champ" in narrow and "chal" in narrow and "--wide: P(best), needs" in narrow
    assert all(len(line) <= 80 for line in narrow.splitlines()), narrow
    watched = run_cli("shadow", "status", "--watch", "--interval", "0.2", "--iterations", "2").stdout
    assert "Shadow models" in watched and "chal" in watched
    refused = run_cli("shadow", "promote", "chal", check=False)
    assert refused.returncode == 1 and "not promoted" in refused.stderr
    no_reason = run_cli("shadow", "promote", "chal", "--force", check=False)
    assert no_reason.returncode == 1 and "--reason" in no_reason.stderr
    out = run_cli("shadow", "promote", "chal", "--force", "--reason", "desk request").stdout
    assert "chal is the champion" in out
    out = run_cli("shadow", "rollback", "--reason", "second thoughts").stdout
    assert "champ is the champion again" in out
    hist = run_cli("shadow", "history").stdout
    assert "rollback" in hist and "manual" in hist and "desk request" in hist
    with registry_db.connect() as c:
        assert c.execute(text("SELECT name FROM shadow_models WHERE role='champion'")).scalars().all() == ["champ"]
    log = (os.environ["QUANTPIPE_LOG_DIR"] + "/shadow_models.log")
    assert "CRITICAL rollback" in open(log).read()


def test_unknown_model_and_bad_file_errors_name_the_field(registry_db, tmp_path):  # noqa: F811
    r = run_cli("shadow", "compare", "ghost", check=False)
    assert r.returncode == 1 and "model" in r.stderr and "ghost" in r.stderr
    (tmp_path / "x.csv").write_text("trade_id,closed_at\n1,2\n")
    r = run_cli("shadow", "record-trades", str(tmp_path / "x.csv"), "--model", "m", check=False)
    assert r.returncode == 1 and "missing column" in r.stderr and "return" in r.stderr


def test_record_trades_reports_each_bad_line_and_keeps_the_good_ones(registry_db, tmp_path):  # noqa: F811
    """A non-UTF-8 line, a ragged line, a NUL, a bad number, a re-sent id with another return, a blank model:
    each is reported with its line and why and kept in dead_letters; the good lines are stored."""
    run_cli("shadow", "deploy", "champ", "--type", "momentum", "--champion")
    good = make_trades([0.01, -0.02, 0.03, 0.015], prefix="g")
    line = lambda r, model="champ": (f"{r['trade_id']},{r['opened_at']},{r['closed_at']},{r['return']},"  # noqa: E731
                                     f"{r['pnl']},{model}").encode()
    body = [b"trade_id,opened_at,closed_at,return,pnl,model", line(good[0]),
            line(good[1]).replace(b"-0.02", b"-0.0\xff2"),                             # line 3: not UTF-8
            b"x1,2026-01-05T14:30:00,2026-01-05T14:35:00,0.01",                         # line 4: 4 values
            line(dict(good[0], trade_id="nul\x00id")),                                 # line 5
            line(dict(good[2], **{"return": "1e999"})),                                 # line 6: not finite
            line(good[2]), line(dict(good[2], **{"return": 0.5})),                      # line 8: conflict
            line(good[3], model=""),                                                    # line 9: no model
            line(dict(good[1], trade_id="g-ok"))]
    (tmp_path / "t.csv").write_bytes(b"\n".join(body) + b"\n")
    out = run_cli("shadow", "record-trades", str(tmp_path / "t.csv"), "--no-evaluate").stdout
    for want in ("line 3: return: not valid UTF-8 (byte 0xff", "line 4: row: 4 values for 6 columns",
                 "line 5: trade_id:", "line 6: return: '1e999' is not finite",
                 "line 8: trade_id: 'g000002' is already recorded with other values", "line 9: model: empty"):
        assert want in out, out
    assert re.search(r"champ\s+│\s+3\s+│\s+0\s+│\s+3\s+│\s+3", out), out
    with registry_db.connect() as c:
        stored = set(c.execute(text("SELECT trade_id FROM shadow_trades")).scalars())
        letters = c.execute(text("SELECT field FROM dead_letters WHERE pool='shadow' ORDER BY id")).scalars().all()
    assert stored == {"g000000", "g000002", "g-ok"}
    assert sorted(letters) == sorted(["return", "row", "model", "trade_id", "return", "trade_id"])
    r = run_cli("shadow", "record-trades", str(tmp_path / "t.csv"), "--model", "ghost", check=False)
    assert r.returncode == 1 and "no model named 'ghost'" in r.stderr


def test_simulate_aa_prints_the_rate_line():
    out = run_cli("shadow", "simulate", "--aa", "--runs", "200", "--seed", "1").stdout
    assert "champion: established (5000 trades before the challenger)" in out and "the worker's" in out
    m = re.search(r"false promotion rate: (\d+\.\d)% \(95% CI (\d+\.\d)–(\d+\.\d)%, 200 runs\)", out)
    assert m, out
    assert float(m.group(2)) <= float(m.group(1)) <= float(m.group(3))


def test_simulate_effect_reports_power_and_rollback_rates():
    out = run_cli("shadow", "simulate", "--effect", "0.1", "--runs", "100", "--seed", "2").stdout
    assert "power (effect 0.1" in out and "trades to promotion: median" in out
    assert "false rollback rate:" in out and "seed rule" in out and "rollback detection" in out


def test_disabled_pool_says_so(registry_db):  # noqa: F811
    env = {**os.environ, "ENABLE_SHADOW_MODELS": "false"}
    out = run_cli("shadow", "status", env=env).stdout
    assert "disabled" in out and "ENABLE_SHADOW_MODELS=false" in out


def test_checkpoint_export_import_round_trip_via_cli(registry_db, tmp_path):  # noqa: F811
    run_cli("shadow", "deploy", "champ", "--type", "momentum", "--champion")
    path = tmp_path / "cp.json"
    run_cli("shadow", "checkpoint", "export", "--path", str(path))
    doc = json.loads(path.read_text())
    assert doc["counts"]["models"] == 1
    with registry_db.begin() as c:
        c.execute(text("TRUNCATE shadow_promotions, shadow_evaluations, shadow_trades, shadow_models CASCADE"))
    out = run_cli("shadow", "checkpoint", "import", "--path", str(path), "--yes").stdout
    assert "registry restored" in out
    assert "champ" in run_cli("shadow", "status").stdout
    path.write_text(path.read_text()[:-40])
    r = run_cli("shadow", "checkpoint", "import", "--path", str(path), "--yes", check=False)
    assert r.returncode == 1 and "torn or damaged" in r.stderr
