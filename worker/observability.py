"""The worker's logs and metrics, hooked into Celery's signals by :func:`install`.

- ``celeryd_init`` (the earliest a worker signals) and ``setup_logging``: Celery leaves logging to
  us (JSON lines or text, redacted; see :mod:`shared.logging_setup`) instead of installing its own
  handlers, and Python warnings (Celery's "running as root") become log lines too. ``LOG_LEVEL``
  sets the level; Celery's ``--loglevel`` is ignored. With JSON logs there is no start-up banner
  (many lines of plain text on stdout).
- ``worker_init``: the metrics server on ``WORKER_METRICS_PORT`` starts, once per worker process
  (the threads pool runs every task in that one process). If the port is taken, for example by a
  second worker on the same host, the worker logs a warning and runs without it.
- ``task_prerun``/``task_postrun``: the routing's ``routing_id``, ``contact_id`` and ``intent`` are
  bound to every line logged while its task runs, Celery's own "received/succeeded/retry" lines
  and the CXone client's included.
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

import redis
from celery import signals
from prometheus_client import start_http_server

from shared.cxone import metrics as cxone_metrics
from shared.logging_setup import bind_log_context, configure_logging, reset_log_context
from shared.redis_connection import redis_client as connect_redis
from shared.settings import Settings
from worker import metrics

log = logging.getLogger(__name__)

#: The log fields taken from a routing task's message.
CONTEXT_FIELDS = ("routing_id", "contact_id", "intent")

#: The binding of the task running in this thread (a pool thread runs one task at a time; the
#: task id cannot key it, as a retry of a task keeps its id and may start before the first ends).
_running = threading.local()
_metrics_started = False


def install(settings: Settings) -> None:
    """Connect the receivers (idempotent: Celery keeps one connection per ``dispatch_uid``)."""

    def setup_logging(**_: object) -> None:
        configure_logging(settings, service="worker")
        logging.captureWarnings(True)

    def early_setup(sender=None, instance=None, **_: object) -> None:
        # Before Celery's own start-up checks and worker_init, so their lines are formatted too.
        setup_logging()
        if settings.log_format == "json" and instance is not None:
            instance.quiet = True  # no banner

    def start_metrics(**_: object) -> None:
        start_metrics_server(settings)

    signals.setup_logging.connect(setup_logging, weak=False, dispatch_uid="router.setup_logging")
    signals.celeryd_init.connect(early_setup, weak=False, dispatch_uid="router.early_setup")
    signals.worker_init.connect(start_metrics, weak=False, dispatch_uid="router.metrics")
    signals.task_prerun.connect(bind_task_context, weak=False, dispatch_uid="router.log_bind")
    signals.task_postrun.connect(unbind_task_context, weak=False, dispatch_uid="router.log_unbind")


def start_metrics_server(settings: Settings, redis_client: redis.Redis | None = None) -> WSGIServer | None:
    """Serve this process's metrics on ``WORKER_METRICS_PORT`` (all addresses); return the
    server, or None when disabled (0), already started here, or the port is taken."""
    global _metrics_started
    port = settings.worker_metrics_port
    if port == 0 or _metrics_started:
        return None
    # No retries: a scrape must answer quickly (router_redis_up 0), the next one tries again.
    client = redis_client or connect_redis(settings, socket_timeout=2, socket_connect_timeout=1, retries=0)
    try:
        server, _thread = start_http_server(port, registry=metrics.WORKER_REGISTRY)
    except OSError as exc:
        log.warning(
            "worker metrics not served: port %s is unavailable (%s); set "
            "WORKER_METRICS_PORT to a free port, or 0 to turn them off",
            port,
            exc.strerror,
        )
        return None
    metrics.WORKER_REGISTRY.register(metrics.RoutingStateCollector(client))
    metrics.WORKER_REGISTRY.register(cxone_metrics.CXonePausesCollector(client))
    _metrics_started = True
    log.info("worker metrics served on port %s at /metrics", port, extra={"port": port})
    return server


def bind_task_context(task_id: str | None = None, args=None, **_: object) -> None:
    """``task_prerun``: bind the routing's ids to every line logged by this task."""
    message = args[0] if args and isinstance(args[0], dict) else {}
    fields = {name: message[name] for name in CONTEXT_FIELDS if isinstance(message.get(name), str)}
    _running.token = bind_log_context(**fields, task_id=task_id)


def unbind_task_context(**_: object) -> None:
    """``task_postrun``: forget what :func:`bind_task_context` bound (same thread, same context)."""
    token = getattr(_running, "token", None)
    _running.token = None
    if token is not None:
        try:
            reset_log_context(token)
        except ValueError:  # bound in another context: nothing of ours to undo here
            pass
