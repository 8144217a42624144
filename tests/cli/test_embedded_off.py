"""QUANTPIPE_EMBEDDED=false with DATABASE_URL/REDIS_URL unset: every entry point refuses
with one line naming the variables, and no private server is started (issue #10 item 8)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support import ROOT

MESSAGE = "DATABASE_URL and REDIS_URL must be set: QUANTPIPE_EMBEDDED=false"
CELERY = [sys.executable, "-m", "celery", "-A", "workers.app"]
QUANTPIPE = [sys.executable, "-m", "cli.main"]


@pytest.fixture()
def home():
    path = Path(tempfile.mkdtemp(prefix="qp-embedded-off-"))
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("argv", [
    QUANTPIPE + ["status"], QUANTPIPE + ["db", "upgrade"], QUANTPIPE + ["worker", "ingest"],
    QUANTPIPE + ["up", "--no-flower"], QUANTPIPE + ["services", "start"],
    CELERY + ["worker", "-Q", "shadow"], CELERY + ["beat"], CELERY + ["inspect", "ping"],
], ids=lambda a: " ".join(a[a.index("cli.main") + 1 if "cli.main" in a else 4:][:2]))
def test_refuses_with_one_line_and_starts_nothing(home, argv):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(QUANTPIPE_EMBEDDED="false", QUANTPIPE_HOME=str(home))
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and MESSAGE in lines[0], proc.stdout + proc.stderr
    assert not any(home.iterdir()), sorted(p.name for p in home.iterdir())  # no pgdata, redis or state file
