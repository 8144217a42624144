"""The embedded Redis/PostgreSQL state file: reused while alive, restarted when stale, data kept."""

import os
import signal

import redis

from shared_models import embedded


def test_stale_state_is_detected_and_data_survives(tmp_path):
    home = tmp_path / "home"
    first = embedded.ensure_services(home, postgres=False, redis=True)
    try:
        client = redis.Redis.from_url(first.redis_url)
        client.set("qp:test:key", "kept")
        again = embedded.ensure_services(home, postgres=False, redis=True)
        assert again.redis_pid == first.redis_pid  # alive: reused, not restarted

        os.kill(first.redis_pid, signal.SIGKILL)  # crash: state file now stale
        embedded.stop_pid(first.redis_pid)
        fresh = embedded.ensure_services(home, postgres=False, redis=True)
        assert fresh.redis_pid != first.redis_pid
        # appendfsync always: the write acknowledged before the crash is still there
        assert redis.Redis.from_url(fresh.redis_url).get("qp:test:key") == b"kept"
    finally:
        stopped = embedded.stop_services(home)
    assert not embedded._alive(stopped.redis_pid)
    assert not (home / embedded.STATE_FILE).exists()


def test_garbage_state_file_is_ignored(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / embedded.STATE_FILE).write_text("{not json")
    assert embedded.read_state(home) == embedded.EmbeddedState()
