"""Each pool's tasks run on that pool's workers, and on no other; any task is sent by name."""

import json
import subprocess
import sys

import pytest

from tests.support import ROOT
from workers.app import app, consumed_pools, load_pools
from workers.routing import POOL_PACKAGES, POOLS, pool_of

HEAVY = ("numpy", "pandas", "scipy", "statsmodels", "networkx", "talib")


def test_every_registered_task_has_a_pool_and_a_route():
    load_pools(POOLS)
    names = [n for n in app.tasks if not n.startswith("celery.")]
    assert {f"{p}.ping" for p in POOLS} <= set(names)
    for name in names:
        route = app.amqp.router.route({}, name)
        assert route["queue"].name == pool_of(name), name


def test_json_only_and_reliability_settings():
    c = app.conf
    assert c.task_serializer == c.result_serializer == "json"
    assert c.accept_content == ["json"] and c.result_accept_content == ["json"]
    assert c.task_acks_late and c.task_reject_on_worker_lost and c.worker_prefetch_multiplier == 1
    assert c.worker_send_task_events and c.task_send_sent_event
    assert c.broker_connection_retry_on_startup
    vt = c.broker_transport_options["visibility_timeout"]
    assert vt == c.result_backend_transport_options["visibility_timeout"] > c.task_time_limit > c.task_soft_time_limit


@pytest.mark.parametrize("pool", POOLS)
def test_ping_sent_by_name_runs_on_its_own_pool(workers, pool):
    result = app.send_task(f"{pool}.ping").get(timeout=30)  # no task object: name and route only
    assert result["pool"] == pool
    assert result["hostname"] == workers[pool].hostname
    others = {w.hostname for p, w in workers.items() if p != pool}
    assert result["hostname"] not in others


def test_each_worker_registers_only_its_own_pool(workers):
    for pool, w in workers.items():
        registered = app.control.inspect(destination=[w.hostname], timeout=5).registered() or {}
        names = {n.split()[0] for n in registered.get(w.hostname, [])}
        ours = {n for n in names if not n.startswith("celery.")}
        assert f"{pool}.ping" in ours, (pool, names)
        assert {pool_of(n) for n in ours} == {pool}, (pool, sorted(ours))


def test_consumed_pools_follow_queue_options():
    assert consumed_pools(["shadow"]) == ["shadow"]
    assert consumed_pools(None) == list(POOLS) == consumed_pools([])
    assert consumed_pools(["patterns", "shadow", "celery"]) == ["patterns", "shadow"]
    assert consumed_pools(None, ["ingest"]) == [p for p in POOLS if p != "ingest"]


_PROBE = """
import json, sys
from workers.app import app, load_pools
pools = {pools!r}
load_pools(pools)
schedule = {{name: (e["task"], app.amqp.router.route({{}}, e["task"])["queue"].name)
            for name, e in app.conf.beat_schedule.items()}}
print(json.dumps({{"modules": sorted(m for m in sys.modules if m.startswith("workers.") or m.split(".")[0] in {heavy!r}),
                  "schedule": schedule}}))
"""


def _probe(pools: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(pools=pools, heavy=HEAVY)], cwd=ROOT,
                         capture_output=True, text=True, timeout=240, check=True)
    return json.loads(out.stdout)


def test_the_app_alone_imports_no_pool_and_beat_still_routes_every_pool():
    got = _probe([])
    assert not [m for m in got["modules"] if m.endswith(".tasks") or m.split(".")[0] in HEAVY], got["modules"]
    pools_scheduled = {task.split(".")[0] for task, _ in got["schedule"].values()}
    assert pools_scheduled >= {"ingest", "patterns", "discovery"}  # shadow's entries vanish when disabled
    for task, queue in got["schedule"].values():
        assert queue == pool_of(task)


@pytest.mark.parametrize("pool", POOLS)
def test_a_pool_loads_no_other_pool(pool):
    modules = _probe([pool])["modules"]
    for other, package in POOL_PACKAGES.items():
        loaded = [m for m in modules if m.startswith(package + ".") and not m.endswith(".schedule")]
        assert bool(loaded) == (other == pool), (other, loaded)


@pytest.mark.parametrize("pool", POOLS)
def test_a_pool_worker_starts_without_its_analysis_libraries(pool):
    """Issue #16 item 5: numpy, pandas, scipy, ... load at a task's first use, so an idle worker of any
    pool stays near a bare Celery worker's memory (benchmarks/worker_memory.py measures it)."""
    modules = _probe([pool])["modules"]
    assert not [m for m in modules if m.split(".")[0] in HEAVY], (pool, [m for m in modules
                                                                         if m.split(".")[0] in HEAVY])
