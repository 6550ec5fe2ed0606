"""The ingress's metrics: every webhook answer counted and timed, served at ``GET /metrics``.

gunicorn runs several processes, so their values are shared through files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, set up by ``gunicorn.conf.py``)
and summed at scrape time (:func:`ingress_scrape_registry`). The ingress creates no other metric,
so that directory holds only these.

``deploy/prometheus/alerts.yml`` and ``deploy/grafana/router-dashboard.json`` use exactly these
names and label values; ``tests/unit/observability/test_deploy_files.py`` checks that they do.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.multiprocess import MultiProcessCollector

# No "<name>_created" series beside every counter and histogram (see worker.metrics).
disable_created_metrics()

#: The ``reason`` of the outcomes that need none (accepted, duplicate).
NO_REASON = "none"
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


def ingress_scrape_registry(multiprocess_dir: str | None) -> CollectorRegistry:
    """What ``GET /metrics`` serves: this process's ingress metrics, or, under gunicorn, the sum
    over every process that wrote to ``multiprocess_dir``."""
    if not multiprocess_dir:
        return INGRESS_REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=multiprocess_dir)
    return registry
