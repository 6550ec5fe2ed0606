"""The CXone client's own metrics: how long its calls take, token refreshes and limiter refusals.

They are created here, beside the client, but registered nowhere: the process that makes CXone calls
serves them (the worker adds them to its registry in :mod:`worker.metrics`). The ingress never
imports the client, so it never creates them.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

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

#: Every metric above, for the serving process to register.
COLLECTORS = (CXONE_REQUEST_DURATION, TOKEN_REFRESHES, LIMITER_WAIT)
