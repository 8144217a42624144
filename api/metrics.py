"""Prometheus exposition (prometheus-client): the pipeline's gauges and the API's own latency.

Pipeline figures are read at scrape time (a custom collector, as the API role):
queue depth and workers per pool, ingest events/s (last minute) and stream lag,
producer heartbeat age, outbox backlog, dead letters per pool and source, shadow
promotions/rollbacks. The latency histogram lives in each API process; with
several uvicorn workers ``quantpipe api`` sets PROMETHEUS_MULTIPROC_DIR so a scrape
of any worker sums all of them.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import text

log = logging.getLogger("quantpipe.api")

HTTP_LATENCY = Histogram("quantpipe_http_request_duration_seconds", "HTTP request latency of the API",
                         ["method", "route", "status"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_LATENCY.labels(method, route, str(status)).observe(seconds)


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class PipelineCollector:
    """Reads the pipeline's state on each scrape; a part that cannot be read is left out and logged."""

    def collect(self):
        from .health import facts

        f = facts()
        up = _gauge("quantpipe_up", "1 when the service answers", ["service"])
        up.add_metric(["database"], float(f["database"]))
        up.add_metric(["redis"], float(f["redis"]))
        yield up
        workers = _gauge("quantpipe_workers", "Workers online per pool", ["pool"])
        depth = _gauge("quantpipe_queue_depth", "Tasks waiting in each pool's queue", ["pool"])
        for pool, hosts in f["workers"].items():
            workers.add_metric([pool], float(len(hosts)))
            if f["depth"][pool] is not None:
                depth.add_metric([pool], float(f["depth"][pool]))
        yield workers
        yield depth
        if f["redis"]:
            yield from self._redis_metrics()
        if f["database"]:
            yield from self._database_metrics()

    @staticmethod
    def _redis_metrics():
        from workers.ingestion import stream
        from workers.patterns.liveness import heartbeat_age

        from .health import _redis

        try:
            client = _redis()
            lag = stream.lag(client)
            age = heartbeat_age(client)
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: Redis figures unavailable: %s", exc)
            return
        g = _gauge("quantpipe_ingest_stream_entries", "Ingest stream entries by state", ["state"])
        g.add_metric(["queued"], float(lag["queued"]))
        g.add_metric(["pending"], float(lag["pending"]))
        yield g
        hb = _gauge("quantpipe_patterns_heartbeat_age_seconds", "Age of the producer heartbeat (-1 = never)")
        hb.add_metric([], -1.0 if age is None else float(age))
        yield hb

    @staticmethod
    def _database_metrics():
        from .db import engine

        try:
            with engine().connect() as conn:
                per_sec = conn.execute(text(
                    "SELECT count(*) / 60.0 FROM ingest_events WHERE ts > now() - interval '60 seconds'")).scalar()
                unsent = conn.execute(text("SELECT count(*) FROM pattern_outbox WHERE sent_at IS NULL")).scalar()
                dead = conn.execute(text("SELECT pool, source, count(*) FROM dead_letters GROUP BY pool, source")).all()
                shadow = conn.execute(text("SELECT event, count(*) FROM shadow_promotions GROUP BY event")).all()
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: database figures unavailable: %s", exc)
            return
        g = _gauge("quantpipe_ingest_events_per_second", "Events stored per second over the last minute")
        g.add_metric([], float(per_sec or 0))
        yield g
        g = _gauge("quantpipe_patterns_outbox_backlog", "Pattern events not yet published")
        g.add_metric([], float(unsent or 0))
        yield g
        c = CounterMetricFamily("quantpipe_dead_letters", "Inputs kept as dead letters", labels=["pool", "source"])
        for pool, source, n in dead:
            c.add_metric([pool, source], float(n))
        yield c
        c = CounterMetricFamily("quantpipe_shadow_events", "Shadow promotion history events", labels=["event"])
        for event, n in shadow:
            c.add_metric([event], float(n))
        yield c


def exposition() -> tuple[bytes, str]:
    """The text exposition for one scrape."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_HttpOnly())
    registry.register(PipelineCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _HttpOnly:
    """This process's latency histogram (single-process mode)."""

    def collect(self):
        return HTTP_LATENCY.collect()
