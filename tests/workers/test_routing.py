"""Each pool's tasks run on that pool's workers, and on no other."""

import pytest

from workers.app import app
from workers.routing import POOLS, pool_of


def test_every_registered_task_has_a_pool_and_a_route():
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
def test_ping_runs_on_its_own_pool(workers, pool):
    result = app.tasks[f"{pool}.ping"].delay().get(timeout=30)
    assert result["pool"] == pool
    assert result["hostname"] == workers[pool].hostname
    others = {w.hostname for p, w in workers.items() if p != pool}
    assert result["hostname"] not in others
