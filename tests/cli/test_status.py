"""`quantpipe status` with the database down says so (not "run db upgrade")."""

import os

from shared_models.embedded import free_port
from tests.support import run_cli


def test_status_with_the_database_down_says_the_database_is_down():
    env = {**os.environ, "DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"}
    proc = run_cli("status", "--timeout", "1", env=env, check=False)
    assert proc.returncode == 1
    assert "database  down" in proc.stdout and "the database is down" in proc.stdout, proc.stdout
    assert "db upgrade" not in proc.stdout
