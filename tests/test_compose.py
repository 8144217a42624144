"""docker-compose.yml is checked by parsing it (no Docker engine runs here)."""

import re
from pathlib import Path

import pytest
import yaml

from shared_models.settings import Settings
from workers.app import app
from workers.routing import POOLS

COMPOSE = yaml.safe_load((Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _seconds(text: str) -> int:
    m = re.fullmatch(r"(\d+)(s|m)", text)
    assert m, text
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


@pytest.mark.parametrize("pool", POOLS)
def test_each_pool_has_a_worker_service_on_its_queue(pool):
    svc = SERVICES[f"worker-{pool}"]
    cmd = svc["command"]
    queue = cmd[cmd.index("-Q") + 1]
    assert queue == pool
    # the queue the service consumes is the queue celeryconfig routes the pool's tasks to
    assert app.amqp.router.route({}, f"{pool}.ping")["queue"].name == queue
    assert "container_name" not in svc, "worker services must stay scalable"
    assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert svc["healthcheck"]["test"] and svc["restart"] == "unless-stopped"
    # docker stops a worker only after its warm shutdown had time to finish the running task
    assert _seconds(svc["stop_grace_period"]) > Settings.from_env({}).task_time_limit


def test_every_worker_service_is_a_known_pool():
    workers = {name.removeprefix("worker-") for name in SERVICES if name.startswith("worker-")}
    assert workers == set(POOLS)


def test_beat_is_a_singleton():
    beat = SERVICES["beat"]
    assert "beat" in beat["command"]
    assert beat.get("container_name"), "a fixed container_name makes `--scale beat=2` fail"
    assert beat.get("deploy", {}).get("replicas", 1) == 1


def test_flower_requires_basic_auth_and_binds_locally():
    flower = SERVICES["flower"]
    assert "FLOWER_BASIC_AUTH" in flower["environment"]
    assert all(p.startswith("127.0.0.1:") for p in flower["ports"])


def test_redis_is_durable_and_never_evicts():
    cmd = SERVICES["redis"]["command"]
    assert "--maxmemory-policy noeviction" in cmd and "--appendonly yes" in cmd and "--requirepass" in cmd
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["redis"]["image"].startswith("redis:7")


def test_no_secret_values_in_compose():
    text = (Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text()
    for var in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH"):
        for m in re.finditer(rf"^\s*{var}:\s*(\S+)", text, re.MULTILINE):
            assert m.group(1).startswith("${"), f"{var} must come from .env, found {m.group(1)!r}"


def test_backtest_listener_is_a_singleton():
    svc = SERVICES["patterns-listener"]
    assert svc["command"] == ["quantpipe", "patterns", "listen"]
    assert svc.get("container_name")


def test_no_service_of_the_image_starts_an_embedded_server():
    ours = {name: svc for name, svc in SERVICES.items() if svc.get("image") == "quantpipe:latest"}
    assert {"migrate", "beat", "flower"} | {f"worker-{p}" for p in POOLS} <= set(ours)
    for name, svc in ours.items():
        env = svc.get("environment", {})
        assert env.get("QUANTPIPE_EMBEDDED") == "false", name
        assert env.get("DATABASE_URL") and env.get("REDIS_URL"), name


def _user(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[0]


def test_each_service_logs_in_as_its_own_role_and_only_migrate_knows_the_owner():
    from shared_models.roles import POOL_ROLES

    ours = {name: svc for name, svc in SERVICES.items() if svc.get("image") == "quantpipe:latest"}
    expected = {f"worker-{p}": role for p, role in POOL_ROLES.items()}
    expected.update({"patterns-listener": "quantpipe_patterns", "api": "quantpipe_api", "migrate": "quantpipe",
                     "beat": "no-database-access", "flower": "no-database-access"})
    assert {name: _user(svc["environment"]["DATABASE_URL"]) for name, svc in ours.items()} == expected
    owner = [name for name, svc in ours.items() if "POSTGRES_PASSWORD" in str(svc["environment"])]
    assert owner == ["migrate"]
    assert "quantpipe db logins" in " ".join(SERVICES["migrate"]["command"])
    env_example = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    for name, svc in ours.items():  # every password a service needs comes from .env, required (${VAR:?})
        for var in re.findall(r"\$\{(\w+):\?", str(svc["environment"])):
            assert f"\n{var}=" in env_example, var
    # none of those variables is one of our settings' prefixes (an unknown QUANTPIPE_/INGEST_… stops a program)
    from shared_models.settings import OWNED_PREFIXES

    assert not [v for v in re.findall(r"^(\w+)=", env_example, re.M) if v.startswith(OWNED_PREFIXES)
                and v not in {"QUANTPIPE_IP_HMAC_KEY"}]
