"""The worker's metrics, served by each worker process on ``WORKER_METRICS_PORT``.

:data:`WORKER_REGISTRY` holds the routing outcomes, the CXone client's metrics
(:mod:`shared.cxone.metrics`), the process's CPU and memory, and, once the server starts
(:func:`worker.observability.start_metrics_server`), :class:`RoutingStateCollector`, which reads the
queue depth and the oldest open routing from Redis at scrape time (every worker reports the same
values: aggregate them with ``max``).

``deploy/prometheus/alerts.yml`` and ``deploy/grafana/router-dashboard.json`` use exactly these
names and label values; ``tests/unit/observability/test_deploy_files.py`` checks that they do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import redis
from prometheus_client import (
    CollectorRegistry,
    Counter,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared import redis_keys
from shared.cxone import metrics as cxone_metrics
from shared.task_queue import ROUTING_QUEUE

log = logging.getLogger(__name__)

# No "<name>_created" series beside every counter and histogram: they double the series and no
# rule or panel here uses them.
disable_created_metrics()

#: The ``reason`` of the outcome that needs none (routed).
NO_REASON = "none"
#: ``superseded``: a newer routing for the same contact replaced it before it ran (no call made).
#: ``parked``: refused a CXone call slot, it now waits in the backlog in Redis (reason: the cause,
#: as for ``retried``); a dispatcher hands it back to a worker when a slot is free.
ROUTING_OUTCOMES = ("routed", "retried", "failed", "superseded", "parked")
#: ``retried``: why the routing runs again later.
ROUTING_RETRY_CAUSES = (
    "throttled",
    "rate_limited",
    "transient",
    "in_flight",
    "redis_unavailable",
    "cxone_pause",
    "credentials_rejected",
)
#: ``failed``: which kind of failure ended it (it is dead-lettered).
ROUTING_FAILURE_REASONS = ("permanent", "retry_window", "poison", "outcome_unknown", "revoked")

WORKER_REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=WORKER_REGISTRY)
PlatformCollector(registry=WORKER_REGISTRY)

ROUTINGS = Counter(
    "router_routings",
    "Routing attempts by outcome: routed, retried (reason: the cause), failed (reason: the "
    "kind of failure), superseded (a newer routing for the contact replaced it) or parked "
    "(waits in the backlog for a CXone call slot; reason: the cause).",
    ["outcome", "reason"],
    registry=WORKER_REGISTRY,
)
OVERFLOWS = Counter(
    "router_overflows",
    "Routings an overflow rule moved, one per move: from the queue, to the queue and the rule "
    "(names as the routing table writes them). Counted once per routing and decision.",
    ["from_queue", "to_queue", "rule"],
    registry=WORKER_REGISTRY,
)
SKILL_ACTIVITY_FIELDS_MISSING = Counter(
    "router_skill_activity_fields_missing",
    "Overflow rules that could not be checked because CXone's skill activity lacked the value "
    "(field: CXone's name of it); such a rule never moves a contact.",
    ["field"],
    registry=WORKER_REGISTRY,
)
OVERFLOW_STATE_UNAVAILABLE = Counter(
    "router_overflow_state_unavailable",
    "Routings with overflow rules that kept the queue asked for because no skill activity younger "
    "than 3 x CXONE_ACTIVITY_TTL_SECONDS was at hand (CXone slow, down or refusing the call).",
    registry=WORKER_REGISTRY,
)
for _collector in cxone_metrics.COLLECTORS:
    WORKER_REGISTRY.register(_collector)


def count_routing(outcome: str, reason: str = NO_REASON) -> None:
    """Count one routing outcome (``routed``, ``retried``, ``failed``, ``superseded`` or ``parked``)."""
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
        depth, open_count, oldest_age, waiting = self._families()[:4]
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.llen(ROUTING_QUEUE)
            pipe.zcard(redis_keys.OPEN_ROUTINGS)
            pipe.zrange(redis_keys.OPEN_ROUTINGS, 0, 0, withscores=True)
            pipe.zcard(redis_keys.BACKLOG)
            pipe.hlen(redis_keys.BACKLOG_DISPATCHING)
            queued, opened, oldest, parked, dispatching = pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics: Redis unreachable at scrape time: %s", exc.__class__.__name__)
            yield self._redis_up(0)
            return
        # The backlog is part of what waits to be routed: the depth counts it too (a marketing send
        # above the limit shows here, not as a short Celery list).
        depth.add_metric([], float(queued) + float(parked) + float(dispatching))
        open_count.add_metric([], float(opened))
        oldest_age.add_metric([], max(0.0, self.clock() - float(oldest[0][1])) if oldest else 0.0)
        waiting.add_metric([], float(parked) + float(dispatching))
        yield from (depth, open_count, oldest_age, waiting, self._redis_up(1))

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "router_routing_queue_depth",
                f"Routings waiting to be carried out: task messages in the Celery '{ROUTING_QUEUE}' "
                "list plus routings waiting in the backlog for a CXone call slot.",
            ),
            GaugeMetricFamily("router_open_routings", "Routings accepted and neither routed nor failed yet."),
            GaugeMetricFamily(
                "router_oldest_open_routing_age_seconds",
                "Age of the oldest routing that is neither routed nor failed (0 when none is open).",
            ),
            GaugeMetricFamily(
                "router_routings_waiting_for_slot",
                "Routings waiting in the backlog (in Redis) for a CXone call slot.",
            ),
            RoutingStateCollector._redis_up(None),
        ]

    @staticmethod
    def _redis_up(value: float | None) -> GaugeMetricFamily:
        family = GaugeMetricFamily("router_redis_up", "1 when Redis answered the scrape-time reads, else 0.")
        if value is not None:
            family.add_metric([], value)
        return family
