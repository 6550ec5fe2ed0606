"""The Celery task: message in, :func:`worker.routing.process`, retry out. Nothing else.

Publishing a retry needs Redis. If Redis is down at that moment Celery would raise
``Reject(requeue=False)`` and the message would be deleted: a routing lost. So a failed retry
publish is tried again for a while, and if Redis stays away the message is rejected *with* requeue
(or, if even that cannot reach Redis, left unacked for the visibility timeout to bring back).
"""

from __future__ import annotations

import logging
import time

import redis
from celery import shared_task
from celery.exceptions import Reject, Retry
from marshmallow import ValidationError

from shared.metrics import count_routing
from shared.routing.job import RoutingJob
from shared.task_queue import ROUTE_CONTACT_TASK
from worker.context import worker_context
from worker.routing import RetryLater, process

log = logging.getLogger(__name__)

#: Pauses between attempts to publish a retry while Redis is unreachable (about 15 s in all,
#: enough to ride out a Redis restart).
RETRY_PUBLISH_PAUSES = (0.0, 1.0, 2.0, 4.0, 8.0)


@shared_task(
    bind=True,
    name=ROUTE_CONTACT_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def route_contact(self, message: dict) -> None:
    """Move one CXone contact to its queue (see :mod:`worker.routing` for the guarantees)."""
    try:
        job = RoutingJob.from_message(message)
    except ValidationError as exc:
        # Only our own ingress publishes here, so this is a deployment mismatch: keep the
        # message visible in the logs and Flower (task failure) rather than guessing.
        log.error("malformed routing message: %s", exc.messages)
        raise
    ctx = worker_context()
    delivery = self.request.delivery_info or {}
    try:
        outcome = process(
            job, ctx, attempt=self.request.retries, redelivered=bool(delivery.get("redelivered"))
        )
    except redis.RedisError as exc:
        count_routing("retried", "redis_unavailable")
        outcome = RetryLater(
            min(5.0, ctx.settings.routing_max_countdown_seconds),
            f"Redis unavailable: {exc.__class__.__name__}",
        )
    if outcome is not None:
        _publish_retry(self, outcome)


def _publish_retry(task, outcome: RetryLater) -> None:
    last_error: BaseException | None = None
    for pause in RETRY_PUBLISH_PAUSES:
        time.sleep(pause)
        try:
            raise task.retry(countdown=outcome.countdown, exc=None, throw=False)
        except Retry:
            raise
        except Reject as exc:  # Celery's wrapper around a failed publish
            last_error = exc
            log.warning("could not publish a retry (Redis unavailable?); trying again")
    log.error("retry could not be published; requeueing the message: %s", last_error)
    raise Reject(last_error, requeue=True)
