"""The ingress's metrics: every webhook answer counted and timed, and ``GET /metrics`` to scrape them.

``/metrics`` needs no API key (Prometheus sends none) and shows only counts and timings, never ids
or customer data. ``METRICS_ENABLED=false`` removes it (and the counting) altogether; to keep it
internal, expose only ``/webhook/…`` through the load balancer.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingress import metrics
from shared.settings import Settings

WEBHOOK_ENDPOINT = "ingress.route_webhook"

#: The views' fine-grained rejection reasons (``g.rejection_reason``) → the metric's reason classes.
REASON_CLASSES = {
    "unauthorized": "unauthorized",
    "signature_missing": "unauthorized",
    "signature_invalid": "unauthorized",
    "unsupported_media_type": "unsupported_media_type",
    "body_too_large": "too_large",
    "malformed_json": "malformed_json",
    "json_too_deep": "malformed_json",
    "string_too_long": "invalid",
    "invalid_request": "invalid",
    "unroutable": "unroutable",
    "enqueue_failed": "unavailable",
    "duplicate_in_flight": "unavailable",
}
#: When a view gave no reason (or one not listed above), the answer's status decides.
STATUS_CLASSES = {
    400: "invalid",
    401: "unauthorized",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unroutable",
    503: "unavailable",
}

metrics_blueprint = Blueprint("metrics", __name__)


def register_metrics(app: Flask, settings: Settings) -> None:
    """Count and time every webhook answer, and serve ``GET /metrics``, unless METRICS_ENABLED=false."""
    if not settings.metrics_enabled:
        return
    app.before_request(_start_timer)
    app.after_request(_count_webhook)
    app.register_blueprint(metrics_blueprint)


@metrics_blueprint.get("/metrics")
def scrape():
    """Prometheus text format: all gunicorn processes' webhook counts and timings, summed."""
    multiprocess_dir = current_app.extensions["ingress"].settings.prometheus_multiproc_dir
    body = generate_latest(metrics.ingress_scrape_registry(multiprocess_dir))
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


def webhook_outcome(status: int, rejection_reason: str | None, body: dict | None) -> tuple[str, str]:
    """``(outcome, reason)`` of one webhook answer, with the metric's label values."""
    if 200 <= status < 300:
        return ("duplicate" if (body or {}).get("duplicate") else "accepted"), metrics.NO_REASON
    reason = REASON_CLASSES.get(rejection_reason or "") or STATUS_CLASSES.get(status, "error")
    return "rejected", reason


def _start_timer() -> None:
    if request.endpoint == WEBHOOK_ENDPOINT:
        g.webhook_started = time.perf_counter()


def _count_webhook(response: Response) -> Response:
    started = g.get("webhook_started")
    if started is None:
        return response
    # A resend answered after waiting is a 200 with "duplicate": true: read every 2xx body.
    body = response.get_json(silent=True) if 200 <= response.status_code < 300 else None
    outcome, reason = webhook_outcome(
        response.status_code, g.get("rejection_reason"), body if isinstance(body, dict) else None
    )
    metrics.WEBHOOKS.labels(outcome=outcome, reason=reason).inc()
    metrics.WEBHOOK_DURATION.labels(outcome=outcome).observe(time.perf_counter() - started)
    return response
