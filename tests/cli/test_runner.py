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
