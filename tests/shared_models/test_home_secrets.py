"""Secrets created once under QUANTPIPE_HOME: one winner among racing processes, mode 0600, never empty."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
import time

import pytest

from shared_models.home_secrets import HomeSecretError, home_secret


def _race(path: str, barrier, delay: float, out) -> None:
    def make() -> bytes:
        time.sleep(delay)  # a slow writer: the others must not read its file half-written
        return os.urandom(16).hex().encode()

    barrier.wait()
    out.put(home_secret(path, make, "QUANTPIPE_TEST_SECRET"))


def test_racing_processes_agree_on_one_value(tmp_path):
    path = tmp_path / "home" / "secret.key"  # the folder does not exist yet either
    ctx = mp.get_context("fork")
    n = 6
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(path), barrier, 0.05 * (i % 3), out)) for i in range(n)]
    for p in procs:
        p.start()
    values = [out.get(timeout=20) for _ in procs]
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    assert len(set(values)) == 1 and len(values[0]) == 32
    assert path.read_bytes() == values[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["secret.key"]  # no temporary file left behind


def test_an_existing_secret_is_kept(tmp_path):
    path = tmp_path / "secret.key"
    first = home_secret(path, lambda: b"one\n", "X")

    def never() -> bytes:
        raise AssertionError("make() called although the file exists")

    assert first == b"one" and home_secret(path, never, "X") == b"one"


def test_an_empty_file_names_itself_and_the_setting(tmp_path):
    path = tmp_path / "secret.key"
    path.write_bytes(b"  \n")
    with pytest.raises(HomeSecretError, match=r"secret\.key is empty.*QUANTPIPE_TEST_SECRET"):
        home_secret(path, lambda: b"new", "QUANTPIPE_TEST_SECRET")


def test_each_home_secret_goes_through_it(tmp_path, monkeypatch):
    """The four secrets generated under the home are created by ``home_secret`` (a spy around the real
    one, so a module that wrote its file by itself again would fail here): private, non-empty files."""
    from api.dashboard import session
    from cli import runner
    from shared_models import home_secrets
    from shared_models.settings import get_settings
    from workers.ingestion import privacy
    from workers.notifications import secret_box

    made: list[str] = []

    def spy(path, make, variable):
        made.append(os.path.basename(path))
        return home_secrets.home_secret(path, make, variable)

    for module in (privacy, secret_box, runner, session):
        monkeypatch.setattr(module, "home_secret", spy)
    monkeypatch.setenv("QUANTPIPE_HOME", str(tmp_path))  # the dashboard's reads its home from the settings
    monkeypatch.delenv("QUANTPIPE_DASHBOARD_SECRET", raising=False)
    caches = (privacy._key_from_home, secret_box._key_from_home, session.secret, get_settings)
    for cache in caches:
        cache.cache_clear()

    class S:
        flower_basic_auth = None
        home = tmp_path

    try:
        assert len(privacy._key_from_home(str(tmp_path))) == 32
        assert secret_box._key_from_home(str(tmp_path)) == (tmp_path / secret_box.KEY_FILE).read_bytes()
        assert session.secret() == (tmp_path / "dashboard_secret").read_bytes()
        user, password = runner.flower_auth(S()).split(":")
        assert user == "admin" and len(password) >= 20 and runner.flower_auth(S()) == f"{user}:{password}"
    finally:
        for cache in caches:  # the next test's settings are built from its own environment again
            cache.cache_clear()
    files = [privacy.KEY_FILE, secret_box.KEY_FILE, "dashboard_secret", "flower_auth"]
    assert made == files + ["flower_auth"]
    for name in files:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
