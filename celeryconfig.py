"""All Celery settings, read from quantpipe's typed settings (never hard-coded secrets).

Reliability choices (DESIGN §2):
- JSON only, for tasks, results and events: no pickle crosses the wire.
- acks_late + reject_on_worker_lost: a task whose worker dies is redelivered, so
  every task must be idempotent (they are: natural keys, upserts, ON CONFLICT).
- prefetch 1: long tasks are not hoarded by one busy process.
- Redis visibility_timeout > hard time limit, for broker and result backend alike,
  so Redis never redelivers a task that is still running.
"""

from shared_models.db import redis_url
from shared_models.settings import SettingsError, get_settings
from workers.beat_schedule import build_schedule
from workers.routing import QUEUES, TASK_ROUTES

try:
    _settings = get_settings()
    _redis = redis_url()
except SettingsError as exc:  # one line naming the variable, not a traceback, in a worker's log
    raise SystemExit(f"quantpipe: {exc}") from None

broker_url = _redis
# kombu's Redis transport with an atomic fetch (BLMOVE into an inflight list, then one script
# to unacked): a worker SIGKILLed between pop and record no longer loses the message
broker_transport = "workers.broker:Transport"
result_backend = _redis
broker_connection_retry_on_startup = True
broker_connection_max_retries = None  # keep trying: a restarted Redis must not end a worker
broker_transport_options = {
    "visibility_timeout": _settings.visibility_timeout,
    # sweep for unacked tasks of dead workers every 10 s (kombu's default is every ~100 s),
    # so a SIGKILLed worker's task comes back soon after the visibility timeout
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
    # one priority step: each queue is one Redis list, which the atomic fetch needs (no task
    # of ours sets a priority)
    "priority_steps": [0],
    "socket_keepalive": True,
    "health_check_interval": 10,
}
result_backend_transport_options = {"visibility_timeout": _settings.visibility_timeout}
# A task whose work is committed must not fail because Redis restarted before its result
# (and its chord part) was stored: the backend retries on connection errors, with
# exponential backoff up to 10 s, for about 20 minutes (then the task fails loudly).
result_backend_always_retry = True
result_backend_max_retries = 120
result_backend_base_sleep_between_retries_ms = 100
result_backend_max_sleep_between_retries_ms = 10_000
redis_backend_health_check_interval = 10
redis_socket_keepalive = True

# publishing (a retry, a chord callback, a fan-out) waits out a Redis restart (~1 min) instead of failing
task_publish_retry = True
task_publish_retry_policy = {"max_retries": 25, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 3}

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]
event_serializer = "json"

task_queues = QUEUES
task_routes = TASK_ROUTES
task_default_queue = "default"
task_create_missing_queues = False

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
# A lost broker connection must not terminate running tasks: on Redis their messages stay in
# the unacked set and are acknowledged (through the reconnected pool) when they finish; a
# terminated task's message was lost instead (tests/workers/discovery/test_restart.py).
worker_cancel_long_running_tasks_on_connection_loss = False
task_soft_time_limit = _settings.task_soft_time_limit
task_time_limit = _settings.task_time_limit
task_ignore_result = True  # results live in PostgreSQL; tasks that return one opt in
result_expires = 24 * 3600

worker_consumer = "workers.base:Consumer"  # reconnects after Redis restarts (see its docstring)

worker_send_task_events = True
task_send_sent_event = True
task_track_started = True
worker_hijack_root_logger = False

timezone = "UTC"
enable_utc = True
beat_schedule = build_schedule(_settings)
