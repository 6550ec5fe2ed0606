"""Every Prometheus metric of the router, defined in this one module.

Two registries, one per kind of process, so each exposes only its own metrics:

- :data:`INGRESS_REGISTRY`, served by the ingress at ``GET /metrics``. gunicorn runs several
  processes, so their values are shared through files in ``PROMETHEUS_MULTIPROC_DIR``
  (prometheus_client's multiprocess mode, set up by ``gunicorn.conf.py``) and summed at scrape time
  (:func:`ingress_scrape_registry`).
- :data:`WORKER_REGISTRY`, served by each worker process on ``WORKER_METRICS_PORT``: routing
  outcomes, CXone calls, token refreshes and limiter waits, plus :class:`RoutingStateCollector`,
  which reads the queue depth and the oldest open routing from Redis at scrape time (every worker
  reports the same values: aggregate them with ``max``).

``deploy/prometheus/alerts.yml`` and ``deploy/grafana/router-dashboard.json`` use exactly these
names and label values; ``tests/unit/observability/test_deploy_files.py`` checks that they do.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator

import redis
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from shared import redis_keys
from shared.task_queue import ROUTING_QUEUE

log = logging.getLogger(__name__)

#: The ``reason`` of outcomes that need none (accepted, duplicate, routed).
NO_REASON = "none"

# No "<name>_created" series beside every counter and histogram: they double the series and no
# rule or panel here uses them.
disable_created_metrics()

# ---------------------------------------------------------------- ingress

WEBHOOK_OUTCOMES = ("accepted", "duplicate", "rejected")
#: Why a webhook was answered 4xx/5xx. ``error`` is an unexpected crash (500).
WEBHOOK_REJECTION_REASONS = (
    "unauthorized",
    "unsupported_media_type",
    "too_large",
    "malformed_json",
    "invalid",
    "unroutable",
    "unavailable",
    "error",
)

INGRESS_REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOKS = Counter(
    "router_webhooks",
    "Cognigy webhooks answered, by outcome and (for rejections) reason.",
    ["outcome", "reason"],
    registry=INGRESS_REGISTRY,
)
WEBHOOK_DURATION = Histogram(
    "router_webhook_duration_seconds",
    "Time from receiving a webhook to answering it, by outcome.",
    ["outcome"],
    registry=INGRESS_REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# ---------------------------------------------------------------- worker

ROUTING_OUTCOMES = ("routed", "retried", "failed")
#: ``retried``: why the routing runs again later.
ROUTING_RETRY_CAUSES = ("throttled", "rate_limited", "transient", "in_flight", "redis_unavailable")
#: ``failed``: which kind of failure ended it (it is dead-lettered).
ROUTING_FAILURE_REASONS = ("permanent", "retry_window", "poison", "outcome_unknown")
CXONE_ENDPOINTS = ("discovery", "token", "skills", "routing_queue", "signal")

WORKER_REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=WORKER_REGISTRY)
PlatformCollector(registry=WORKER_REGISTRY)

ROUTINGS = Counter(
    "router_routings",
    "Routing attempts by outcome: routed, retried (reason: the cause) or failed (reason: the "
    "kind of failure).",
    ["outcome", "reason"],
    registry=WORKER_REGISTRY,
)
CXONE_REQUEST_DURATION = Histogram(
    "router_cxone_request_duration_seconds",
    "CXone HTTP calls by endpoint and status (HTTP status, or timeout, connect_timeout, "
    "connection_error, error).",
    ["endpoint", "status"],
    registry=WORKER_REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
TOKEN_REFRESHES = Counter(
    "router_cxone_token_refreshes",
    "CXone token requests made by this process (one per refresh, shared by all workers).",
    registry=WORKER_REGISTRY,
)
LIMITER_WAIT = Histogram(
    "router_cxone_limiter_wait_seconds",
    "Calls the shared rate limiter refused (_count), and the wait it asked for.",
    registry=WORKER_REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


def count_routing(outcome: str, reason: str = NO_REASON) -> None:
    """Count one routing outcome (``routed``, ``retried`` or ``failed``)."""
    ROUTINGS.labels(outcome=outcome, reason=reason).inc()


class RoutingStateCollector(Collector):
    """Reads what only Redis knows, at scrape time: the routing queue's depth, how many routings
    are open and how old the oldest is, and whether Redis answered at all."""

    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.time):
        self.redis = client
        self.clock = clock

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        depth, open_count, oldest_age = self._families()[:3]
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.llen(ROUTING_QUEUE)
            pipe.zcard(redis_keys.OPEN_ROUTINGS)
            pipe.zrange(redis_keys.OPEN_ROUTINGS, 0, 0, withscores=True)
            queued, opened, oldest = pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics: Redis unreachable at scrape time: %s", exc.__class__.__name__)
            yield self._redis_up(0)
            return
        depth.add_metric([], float(queued))
        open_count.add_metric([], float(opened))
        oldest_age.add_metric([], max(0.0, self.clock() - float(oldest[0][1])) if oldest else 0.0)
        yield from (depth, open_count, oldest_age, self._redis_up(1))

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "router_routing_queue_depth", f"Task messages waiting in the Celery '{ROUTING_QUEUE}' list."
            ),
            GaugeMetricFamily("router_open_routings", "Routings accepted and neither routed nor failed yet."),
            GaugeMetricFamily(
                "router_oldest_open_routing_age_seconds",
                "Age of the oldest routing that is neither routed nor failed (0 when none is open).",
            ),
            RoutingStateCollector._redis_up(None),
        ]

    @staticmethod
    def _redis_up(value: float | None) -> GaugeMetricFamily:
        family = GaugeMetricFamily("router_redis_up", "1 when Redis answered the scrape-time reads, else 0.")
        if value is not None:
            family.add_metric([], value)
        return family


# ---------------------------------------------------------------- scraping


def ingress_scrape_registry(multiprocess_dir: str | None) -> CollectorRegistry:
    """What ``GET /metrics`` serves: this process's ingress metrics, or, under gunicorn, the sum
    over every process that wrote to ``multiprocess_dir``."""
    if not multiprocess_dir:
        return INGRESS_REGISTRY
    registry = CollectorRegistry()
    registry.register(_OnlyNamed(MultiProcessCollector(None, path=multiprocess_dir), _ingress_family_names()))
    return registry


class _OnlyNamed(Collector):
    """Passes on only the metric families named: the ingress's, not the worker metrics that
    importing this module also created in the same directory (at zero)."""

    def __init__(self, collector: Collector, names: frozenset[str]):
        self.collector = collector
        self.names = names

    def collect(self) -> Iterator[Metric]:
        return (metric for metric in self.collector.collect() if metric.name in self.names)


@functools.cache
def _ingress_family_names() -> frozenset[str]:
    return frozenset(metric.name for metric in INGRESS_REGISTRY.collect())
