"""Crash proofs: a promotion killed half-way, a checkpoint export killed half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from sqlalchemy import text

from shared_models.db import unit_of_work
from shared_models.settings import get_settings
from tests.support import ROOT
from workers.shadow import checkpoint as cp
from workers.shadow import decisions, recording, registry

from .conftest import make_trades

PROMOTER = textwrap.dedent("""
    import sys, time
    from shared_models.db import unit_of_work
    from workers.shadow import decisions

    stage = sys.argv[1]
    real_swap = decisions._swap

    def swap(old, new, session):
        # the real swap, paused (and then SIGKILLed by the test) at the requested point
        old.role, old.allocation = "archived", 0.0
        session.flush()
        if stage == "demoted":
            print("PAUSED", flush=True); time.sleep(60)
        new.role, new.allocation = "champion", 1.0
        session.flush()
        print("PAUSED", flush=True); time.sleep(60)

    decisions._swap = swap
    with unit_of_work() as s:
        decisions.promote(s, "chal", actor="victim", reason="killed half-way")
""")


def _champions(engine):
    with engine.connect() as c:
        return c.execute(text("SELECT name FROM shadow_models WHERE role = 'champion'")).scalars().all()


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["demoted", "swapped"])
def test_killing_a_promotion_half_way_leaves_exactly_one_champion(registry_db, stage):
    with unit_of_work() as s:
        registry.deploy(s, "champ", "momentum", champion=True)
        registry.deploy(s, "chal", "momentum")
    proc = subprocess.Popen([sys.executable, "-c", PROMOTER, stage], cwd=ROOT, env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "PAUSED", proc.stderr.read()
        # mid-transaction, every other session still sees exactly the old champion
        assert _champions(registry_db) == ["champ"]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _champions(registry_db) == ["champ"]
    with registry_db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM shadow_promotions")).scalar() == 0
    # the dead transaction's row locks are gone: a new promotion goes through at once
    deadline = time.monotonic() + 15
    while True:
        try:
            with unit_of_work() as s:
                s.execute(text("SET LOCAL lock_timeout = '1s'"))
                decisions.promote(s, "chal", actor="test", reason="after the crash")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert _champions(registry_db) == ["chal"]


EXPORTER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from shared_models.db import unit_of_work
    from workers.shadow import checkpoint as cp
    print("START", flush=True)
    with unit_of_work() as s:
        cp.export(s, Path(sys.argv[1]))
    print("DONE", flush=True)
""")


@pytest.mark.slow
def test_a_torn_checkpoint_write_never_replaces_a_good_checkpoint(registry_db, tmp_path):
    sh = get_settings().shadow
    with unit_of_work() as s:
        m, _ = registry.deploy(s, "champ", "momentum", champion=True)
        recording.record_trades(s, m, make_trades(np.linspace(-0.01, 0.01, 10_000), minutes=1), source="test",
                                min_trades=sh.min_trades, interval=sh.check_interval, horizon=sh.max_trades)
    path = tmp_path / "shadow_models_checkpoint.json"
    with unit_of_work() as s:
        cp.export(s, path)
    good = cp.load(path)["sha256"]
    probe = subprocess.Popen([sys.executable, "-c", EXPORTER, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    assert probe.stdout.readline().strip() == "START"
    t = time.perf_counter()
    assert probe.stdout.readline().strip() == "DONE"
    export_s = time.perf_counter() - t      # the export itself, imports excluded
    probe.wait()
    rng = np.random.default_rng(0)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", EXPORTER, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout.readline().strip() == "START"
        time.sleep(rng.uniform(0, export_s))   # SIGKILL somewhere inside export(): read, write, fsync, rename
        proc.kill()
        proc.wait()
        doc = cp.load(path)          # never torn: either the old or a complete new checkpoint
        assert doc["sha256"] == good and doc["counts"]["trades"] == 10_000
    assert cp.load(cp.backup_path(path))["sha256"] == good


def test_checkpoint_round_trip_restores_the_registry_exactly(registry_db, tmp_path):
    sh = get_settings().shadow
    rng = np.random.default_rng(1)
    with unit_of_work() as s:
        champ, _ = registry.deploy(s, "champ", "momentum", "the champion", {"lookback": 20}, champion=True)
        chal, _ = registry.deploy(s, "chal", "mean_reversion", "", {"z": 2.5})
        for m, prefix in ((champ, "c"), (chal, "s")):
            recording.record_trades(s, m, make_trades(0.003 + 0.02 * rng.standard_normal(600), prefix=prefix),
                                    source="test", min_trades=sh.min_trades, interval=sh.check_interval,
                                   horizon=sh.max_trades)
    with unit_of_work() as s:
        decisions.evaluate_challenger(s, "chal", get_settings(), auto_promote=False)
    with unit_of_work() as s:
        decisions.promote(s, "chal", actor="t", reason="round trip", force=True)
    path = tmp_path / "cp.json"
    with unit_of_work() as s:
        before = cp.snapshot(s)
        cp.export(s, path)
    with registry_db.begin() as c:
        c.execute(text("TRUNCATE shadow_promotions, shadow_evaluations, shadow_trades, shadow_models CASCADE"))
    with unit_of_work() as s:
        cp.restore(s, path)
    with unit_of_work() as s:
        assert cp.snapshot(s) == before
        m, created = registry.deploy(s, "new", "momentum")    # sequences moved past the restored ids
        assert created and m.id > max(r["id"] for r in before["models"])
    assert before["evaluations"] and before["history"] and len(before["trades"]) == 1200


def test_damaged_checkpoints_are_refused_with_the_reason(tmp_path):
    p = tmp_path / "cp.json"
    with pytest.raises(cp.CheckpointError, match="does not exist"):
        cp.load(p)
    p.write_text('{"format": "quantpipe.shadow.checkpoint", "version": 1, "sha256": "00", "body": {}}')
    with pytest.raises(cp.CheckpointError, match="sha256"):
        cp.load(p)
    p.write_text('{"format": "something else"}')
    with pytest.raises(cp.CheckpointError, match="format"):
        cp.load(p)
