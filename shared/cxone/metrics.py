"""The CXone client's own metrics: how long its calls take, token refreshes and limiter refusals.

They are created here, beside the client, but registered nowhere: the process that makes CXone calls
serves them (the worker adds them to its registry in :mod:`worker.metrics`). The ingress never
imports the client, so it never creates them.

:class:`CXonePausesCollector` reads the pauses CXone imposed on every worker (rejected credentials,
a 429's Retry-After) from Redis at scrape time; each worker reports the same values (use ``max``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client import Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared import redis_keys

log = logging.getLogger(__name__)

# No "<name>_created" series beside every counter and histogram (see worker.metrics).
disable_created_metrics()

#: The ``endpoint`` label of :data:`CXONE_REQUEST_DURATION`.
CXONE_ENDPOINTS = (
    "discovery",
    "token",
    "skills",
    "routing_queue",
    "signal",
    "contact",
    "routing_queues",
    "skill_activity",
)

CXONE_REQUEST_DURATION = Histogram(
    "router_cxone_request_duration_seconds",
    "CXone HTTP calls by endpoint and status (HTTP status, or timeout, connect_timeout, "
    "connection_error, error).",
    ["endpoint", "status"],
    registry=None,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
TOKEN_REFRESHES = Counter(
    "router_cxone_token_refreshes",
    "CXone token requests made by this process (one per refresh, shared by all workers).",
    registry=None,
)
LIMITER_WAIT = Histogram(
    "router_cxone_limiter_wait_seconds",
    "Calls the shared rate limiter refused (_count), and the wait it asked for.",
    registry=None,
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

#: The ``error`` label of :data:`CREDENTIALS_REJECTED`: the token endpoint's OAuth error code, or
#: ``redirect`` when it answered a redirect (not followed).
CREDENTIALS_ERRORS = (
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "unsupported_grant_type",
    "redirect",
)
CREDENTIALS_REJECTED = Counter(
    "router_cxone_credentials_rejected",
    "Token requests CXone refused as a configuration problem (error: the OAuth error code, or "
    "redirect); each one paused token requests for every worker.",
    ["error"],
    registry=None,
)

#: Every metric above, for the serving process to register.
COLLECTORS = (CXONE_REQUEST_DURATION, TOKEN_REFRESHES, LIMITER_WAIT, CREDENTIALS_REJECTED)


class CXonePausesCollector(Collector):
    """Whether token requests are paused (CXone rejected the credentials) and how long API calls
    stay paused (a 429's Retry-After), read from Redis when scraped."""

    def __init__(self, client: redis.Redis | None):
        self.redis = client

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        token_paused, calls_paused = self._families()
        if self.redis is None:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.exists(redis_keys.CXONE_TOKEN_PAUSE)
            pipe.pttl(redis_keys.CXONE_PAUSE_UNTIL)
            token_pause, call_pause_ms = pipe.execute()
        except redis.RedisError as exc:  # router_redis_up says so; no value beats a wrong one
            log.warning("metrics: Redis unreachable at scrape time: %s", exc.__class__.__name__)
            return
        token_paused.add_metric([], 1.0 if token_pause else 0.0)
        calls_paused.add_metric([], max(0.0, int(call_pause_ms) / 1000.0))
        yield from (token_paused, calls_paused)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "router_cxone_token_requests_paused",
                "1 while no worker may request a CXone token because CXone rejected the credentials.",
            ),
            GaugeMetricFamily(
                "router_cxone_calls_paused_seconds",
                "Seconds until any worker may call CXone again after a 429 with Retry-After (0: none).",
            ),
        )
