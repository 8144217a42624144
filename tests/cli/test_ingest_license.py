"""`quantpipe license keygen|issue|verify`."""

import os
from pathlib import Path

from tests.support import run_cli


def test_keygen_issue_verify_roundtrip(tmp_path):
    env = dict(os.environ, QUANTPIPE_LICENSE_PRIVATE_KEY=str(tmp_path / "license_private.pem"),
               QUANTPIPE_LICENSE_PUBLIC_KEY=str(tmp_path / "license_public.pem"), QUANTPIPE_HOME=str(tmp_path))
    # keygen writes into QUANTPIPE_HOME; the embedded servers' state is not needed for it
    out = run_cli("license", "keygen", env=env).stdout
    assert "mode 0600" in out and (Path(tmp_path) / "license_private.pem").stat().st_mode & 0o077 == 0
    again = run_cli("license", "keygen", env=env, check=False)
    assert again.returncode == 1 and "exists" in again.stderr
    key = run_cli("license", "issue", "--company", "Acme Corp", "--tier", "trial", "--events", "5000",
                  "--days", "30", env=env).stdout.strip()
    assert key.startswith("SW-TRIAL-")
    env_verify = dict(env, REDIS_URL=os.environ["REDIS_URL"], DATABASE_URL=os.environ["DATABASE_URL"])
    shown = run_cli("license", "verify", key, env=env_verify).stdout
    assert "Acme Corp" in shown and "5,000" in shown and "trial" in shown
    tampered = run_cli("license", "verify", key.replace("SW-TRIAL-", "SW-PROD-"), env=env_verify, check=False)
    assert tampered.returncode == 1 and "does not match" in tampered.stderr
    bad = run_cli("license", "issue", "--company", "X", "--tier", "gold", "--events", "1", "--days", "1",
                  env=env, check=False)
    assert bad.returncode == 2 and "gold" in bad.stderr


def test_issue_without_private_key_is_a_clear_error(tmp_path):
    env = dict(os.environ, QUANTPIPE_HOME=str(tmp_path))
    env.pop("QUANTPIPE_LICENSE_PRIVATE_KEY", None)
    out = run_cli("license", "issue", "--company", "X", "--tier", "prod", "--events", "1", "--days", "1",
                  env=env, check=False)
    assert out.returncode == 1 and "keygen" in out.stderr and "Traceback" not in out.stderr
