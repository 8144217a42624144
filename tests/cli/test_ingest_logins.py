"""`quantpipe ingest simulate-logins` in a subprocess against the test servers."""

import os

from tests.support import run_cli
from tests.workers.ingestion.helpers import make_license_key


def test_simulate_logins_prints_roc_auc_and_the_targets():
    env = dict(os.environ, INGEST_LICENSE_KEY=make_license_key())
    res = run_cli("ingest", "simulate-logins", "--users", "12", "--days", "4", "--seed", "3", env=env, check=False)
    out = res.stdout
    for label in ("ROC AUC", "ROC: challenge below a threshold", "logins by scenario", "takeover", "stuffing",
                  "new-device-and-network takeovers challenged:", "known device and network challenged:"):
        assert label in out, label
    assert res.returncode == 0 and "NOT met" not in out, res.stderr
    assert max(len(line) for line in out.splitlines()) <= 80
