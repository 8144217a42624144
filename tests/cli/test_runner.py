"""`quantpipe worker POOL` runs a real worker on that queue only."""

import os
import signal
import subprocess
import sys
import time

from tests.support import ROOT
from workers.app import app


def test_worker_command_consumes_only_its_queue():
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "shadow", "-c", "1", "--loglevel", "WARNING"],
                            cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        queues = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not queues:
            replies = app.control.inspect(timeout=1).active_queues() or {}
            queues = {h: [q["name"] for q in qs] for h, qs in replies.items() if h.startswith("shadow@")
                      and "qp-test" not in h}
        assert queues, "the worker never came online"
        assert all(names == ["shadow"] for names in queues.values()), queues
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode is not None


def test_an_emptied_home_secret_is_a_one_line_error(tmp_path):
    """A user who empties the generated flower_auth file gets the fix, not a traceback, and nothing starts."""
    (tmp_path / "flower_auth").write_bytes(b"\n")
    env = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH"}
    env.update(QUANTPIPE_HOME=str(tmp_path), COLUMNS="500")  # rich would wrap the path at 80 columns
    out = subprocess.run([sys.executable, "-m", "cli.main", "flower"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2, out
    said = out.stderr.strip()
    assert "Traceback" not in said and said.startswith("error: "), said
    assert "flower_auth is empty" in said and "FLOWER_BASIC_AUTH" in said, said
    assert "Flower:" not in out.stdout, out.stdout  # no address of a Flower that will not start
    assert (tmp_path / "flower_auth").read_bytes() == b"\n"  # kept: the user decides
