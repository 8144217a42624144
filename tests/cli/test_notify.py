"""``quantpipe notify``: add (secret shown once), list, test through a real notify worker, history, remove."""

from __future__ import annotations

import pytest

from tests.support import WorkerProcess, run_cli
from tests.workers.notifications.conftest import notify_db  # noqa: F401 - fixture
from tests.workers.notifications.receivers import WebhookReceiver
from workers.notifications import signing


@pytest.fixture()
def notify_worker():
    with WorkerProcess("notify", name="notify-cli") as w:
        yield w


def test_add_list_test_history_remove(notify_db, notify_worker):  # noqa: F811
    with WebhookReceiver() as rx:
        out = run_cli("notify", "add", rx.url, "--events", "shadow.*,anomaly.critical", "--min-priority", "medium")
        secret = out.stdout.strip().splitlines()[-1]
        assert secret.startswith("whsec_") and len(secret) > 40
        assert "subscription 1 (json)" in out.stdout
        listed = run_cli("notify", "list").stdout
        assert "shadow.promotion" in listed and "127.0.0.1" in listed and secret not in listed
        assert max(len(line) for line in listed.splitlines()) <= 80
        tested = run_cli("notify", "test", "1", "--wait", "60")
        assert "delivered (status 200)" in tested.stdout, tested.stdout
        [r] = rx.requests
        payload = signing.verify(secret, r.body, r.headers["x-quantpipe-signature"])
        assert payload["event"] == "notify.test" and payload["subscription_id"] == 1
        hist = run_cli("notify", "history").stdout
        assert "notify.test" in hist and "delivered" in hist and secret not in hist
        one = run_cli("notify", "history", "--delivery", str(payload and 1)).stdout
        assert "attempt 1: status 200" in one
        assert "subscription 1 removed" in run_cli("notify", "remove", "1").stdout
        assert "no subscriptions" in run_cli("notify", "list").stdout
        assert "(removed)" in run_cli("notify", "list", "--all").stdout


@pytest.mark.parametrize("args, needle", [
    (["add", "http://127.0.0.1:9/x", "--events", "nope"], "events: unknown event 'nope'"),
    (["add", "ftp://x", "--events", "*"], "url: 'ftp://x' is not an http(s) URL"),
    (["add", "not-an-address@", "--events", "*", "--format", "email"], "is not an email address"),
    (["remove", "999"], "subscription_id: no subscription 999"),
    (["test", "999"], "subscription_id: no subscription 999"),
])
def test_bad_input_names_the_field(notify_db, args, needle):  # noqa: F811
    out = run_cli("notify", *args, check=False)
    assert out.returncode != 0 and needle in out.stderr and "Traceback" not in out.stderr
