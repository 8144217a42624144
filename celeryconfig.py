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
result_backend = _redis
broker_connection_retry_on_startup = True
broker_connection_max_retries = None  # keep trying: a restarted Redis must not end a worker
broker_transport_options = {
    "visibility_timeout": _settings.visibility_timeout,
    # sweep for unacked tasks of dead workers every 10 s (kombu's default is every ~100 s),
    # so a SIGKILLed worker's task comes back soon after the visibility timeout
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
    "socket_keepalive": True,
    "health_check_interval": 10,
}
result_backend_transport_options = {"visibility_timeout": _settings.visibility_timeout}
redis_backend_health_check_interval = 10
redis_socket_keepalive = True

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
worker_cancel_long_running_tasks_on_connection_loss = True
task_soft_time_limit = _settings.task_soft_time_limit
task_time_limit = _settings.task_time_limit
task_ignore_result = True  # results live in PostgreSQL; tasks that return one opt in
result_expires = 24 * 3600

worker_send_task_events = True
task_send_sent_event = True
task_track_started = True
worker_hijack_root_logger = False

timezone = "UTC"
enable_utc = True
beat_schedule = build_schedule(_settings)
