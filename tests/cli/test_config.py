import re
from pathlib import Path

from cli.config import markdown_table
from tests.support import run_cli

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_is_current():
    text = README.read_text()
    table = re.search(r"<!-- config-table:start -->\n(.*?)\n<!-- config-table:end -->", text, re.S).group(1)
    assert table == markdown_table(), "regenerate with: quantpipe config --markdown"


def test_bad_variable_fails_cleanly_naming_it():
    import os

    env = dict(os.environ, SHADOW_ALPHA="2")
    proc = run_cli("config", env=env, check=False)
    assert proc.returncode == 2
    assert "SHADOW_ALPHA" in proc.stderr and "Traceback" not in proc.stderr


def test_config_masks_secrets():
    import os

    env = dict(os.environ, FLOWER_BASIC_AUTH="ops:do-not-print-me")
    proc = run_cli("config", env=env)
    assert "do-not-print-me" not in proc.stdout
