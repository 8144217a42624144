"""The compose ``api`` service: stateless and scalable, after the migration, bound to localhost."""

from pathlib import Path

import yaml

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())


def test_api_service_is_scalable_and_migrated_first():
    svc = COMPOSE["services"]["api"]
    assert svc["command"][:2] == ["quantpipe", "api"] and "--host" in svc["command"]
    assert "container_name" not in svc, "the API must stay scalable"
    assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert all(p.startswith("127.0.0.1:") for p in svc["ports"])
    assert svc["healthcheck"]["test"] and svc["restart"] == "unless-stopped"
