"""The Celery application both sides use, configured in this one place.

The ingress only publishes (``send_task`` by name, so it never imports worker code); the worker
registers the task under the same name. Each setting below answers a known pitfall of Celery on
Redis (https://docs.celeryq.dev/en/stable/userguide/configuration.html and
https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html): see the comment
beside it.
"""

from __future__ import annotations

from celery import Celery

from shared.redis_connection import celery_broker_options
from shared.settings import Settings

ROUTE_CONTACT_TASK = "router.route_contact"
ROUTING_QUEUE = "routing"


def make_celery(settings: Settings, *, control: type | None = None) -> Celery:
    """A Celery app on ``REDIS_URL`` with the delivery guarantees the router relies on.
    ``control`` replaces Celery's remote-control class (the worker's app, which Flower runs on,
    uses one that records revokes in Redis)."""
    app = Celery("cognigy_cxone_router", set_as_current=False, control=control)
    # URL, transport (plain or Sentinel, minus a kombu crash on connection loss), TLS and the
    # socket timeouts that keep a publish from hanging on a dead primary: shared/redis_connection.py.
    broker = celery_broker_options(settings)
    app.conf.update(
        broker_url=broker["broker_url"],
        broker_transport=broker["broker_transport"],
        broker_use_ssl=broker.get("broker_use_ssl"),
        # Status lives in our own routing records; Celery results would only fill Redis.
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=ROUTING_QUEUE,
        # Ack only after the task finished, so a worker that dies mid-routing loses nothing...
        task_acks_late=True,
        # ...including one killed by SIGKILL or the OOM killer (the message is requeued; the
        # task's own delivery counter stops a poison message from looping forever).
        task_reject_on_worker_lost=True,
        # Short I/O tasks with acks_late: never let one worker hoard messages it cannot start.
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # An unacked message is handed to another worker after this long, so a killed
            # worker's routings come back in under two minutes instead of Redis's default hour.
            # Every retry countdown is kept well below it (ROUTING_MAX_COUNTDOWN_SECONDS).
            "visibility_timeout": settings.broker_visibility_timeout_seconds,
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 1,
            **broker["broker_transport_options"],
        },
        # A publish that cannot reach Redis fails fast, so the ingress can answer 503 in time.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        # Flower shows queued, started, retried and failed routings from these events.
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app
