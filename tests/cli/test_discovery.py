"""The discovery CLI in a subprocess: load-congress, scan, and the discoveries tables."""

from tests.support import run_cli
from tests.workers.discovery.helpers import CONGRESS, ensure_loaded


def test_load_congress_reports_counts_and_is_idempotent(engine):
    ensure_loaded(engine)
    out = run_cli("data", "load-congress", str(CONGRESS)).stdout
    assert "paper_filing" in out and "463" in out and "531" in out
    assert "trades valid: 22754, newly inserted: 0" in out


def test_load_congress_bad_path_is_a_clear_error(tmp_path):
    proc = run_cli("data", "load-congress", str(tmp_path), check=False)
    assert proc.returncode != 0 and "none of" in proc.stderr


def test_scan_by_name_then_read_tables(workers, engine):
    ensure_loaded(engine)
    out = run_cli("scan", "politician", "--name", "Ron Wyden").stdout
    assert "politician_id" in out and "written" in out
    out = run_cli("discoveries", "politician", "Wyden").stdout
    assert "Wyden" in out and "patterns" in out and "anomalies" in out
    assert "late_disclosure" in out or "unusual_size" in out or "abnormal_return" in out
    assert "severity >=" in run_cli("discoveries", "critical", "--min-severity", "0.5").stdout
    assert "strength >" in run_cli("discoveries", "recent", "--min-strength", "0.1", "--offset", "1").stdout
    assert "co-trading network" in run_cli("discoveries", "networks", "--limit", "5").stdout
    assert "model_name" in run_cli("discoveries", "experiments").stdout
    proc = run_cli("discoveries", "recent", "--limit", "501", check=False)
    assert proc.returncode != 0 and "--limit" in proc.stderr


def test_scan_politician_needs_exactly_one_selector():
    proc = run_cli("scan", "politician", check=False)
    assert proc.returncode != 0 and "exactly one of --id or --name" in proc.stderr
    proc = run_cli("scan", "politician", "--name", "Nobody Such Person", check=False)
    assert proc.returncode != 0 and "no politician matches" in proc.stderr
    proc = run_cli("scan", "politician", "--id", "42", check=False)
    assert proc.returncode != 0 and "--id: politician_id: expected a UUID" in proc.stderr
    proc = run_cli("scan", "politician", "--id", "00000000-0000-0000-0000-000000000000", check=False)
    assert proc.returncode != 0 and "--id: no politician with id" in proc.stderr


def test_scan_all_runs_the_chord_with_a_progress_bar(workers, engine):
    ensure_loaded(engine)
    proc = run_cli("scan", "all", "--timeout", "240")
    assert "politicians" in proc.stdout and "network_findings" in proc.stdout
    assert "errors" in proc.stdout and "224" in proc.stdout
