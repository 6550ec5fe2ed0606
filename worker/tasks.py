"""The Celery task: message in, :func:`worker.routing.process`, retry or failure out. Nothing else.

Publishing a retry needs Redis. If Redis is down at that moment, Celery raises
``Reject(requeue=False)`` and the message is deleted: a routing lost. So the retry is published with
a retry policy of its own (kombu tries the publish again for about 15 s, enough to ride out a Redis
restart; see "Message Sending Retry" in https://docs.celeryq.dev/en/stable/userguide/calling.html),
and a publish that still failed rejects the message *with* requeue (or, if even that cannot reach
Redis, leaves it unacked for the visibility timeout to bring back).

A routing refused a CXone call slot is parked in the backlog in Redis (:mod:`shared.routing.backlog`)
and its task ends with a result saying so; ``worker.dispatcher`` publishes it again (same task id)
when a slot is free. Only other transient failures stay Celery retries with short countdowns.

What Flower shows: a retry is raised as a :class:`~worker.task_state.RoutingRetry` that reads
``retry in 13 s: CXone answered 503 (outage) on skills``; a routing that failed (already recorded
and dead-lettered) ends the task FAILURE with a :class:`~worker.task_state.RoutingFailed` that
reads ``failed: …; dead-lettered``. Its message is then acked (``acks_on_failure``): the dead letter,
not the broker, keeps it for a replay. It is an expected outcome (``throws``), so Celery logs it
in one line without a traceback.
"""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from celery.exceptions import Reject
from marshmallow import ValidationError

from shared.routing.backlog import Parked
from shared.routing.job import RoutingJob
from shared.task_queue import ROUTE_CONTACT_TASK
from worker.context import worker_context
from worker.metrics import count_routing
from worker.revocations import end_revoked, revoked_by_operator
from worker.routing import Failed, RetryLater, process
from worker.task_state import RoutingFailed, readable_retry, task_state_text, waiting_text

log = logging.getLogger(__name__)

#: How kombu publishes a retry while Redis is unreachable: again after 1, 2, 3, 4 and 5 s (about
#: 15 s in all, enough to ride out a Redis restart), then it gives up. Replaces, for retries only,
#: the app's short ``task_publish_retry_policy``, which keeps the ingress's answers fast.
RETRY_PUBLISH_POLICY = {"max_retries": 5, "interval_start": 1, "interval_step": 1, "interval_max": 5}


@shared_task(
    bind=True,
    name=ROUTE_CONTACT_TASK,
    acks_late=True,
    acks_on_failure=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
    throws=(RoutingFailed,),
)
def route_contact(self, message: dict) -> str | None:
    """Move one CXone contact to its queue (see :mod:`worker.routing` for the guarantees); when it
    now waits in the backlog for a call slot, say so (the task's result, shown by Flower)."""
    try:
        job = RoutingJob.from_message(message)
    except ValidationError as exc:
        # Only our own ingress publishes here, so this is a deployment mismatch: keep the
        # message visible in the logs and Flower (task failure) rather than guessing.
        log.error("malformed routing message: %s", exc.messages)
        raise
    ctx = worker_context()
    delivery = self.request.delivery_info or {}
    outcome: RetryLater | Failed | Parked | None
    try:
        if revoked_by_operator(ctx, self.request.id):  # revoked while no worker heard it
            outcome = end_revoked(job, ctx)
        else:
            outcome = process(
                job,
                ctx,
                attempt=self.request.retries,
                redelivered=bool(delivery.get("redelivered")),
                task_id=self.request.id,
            )
    except redis.RedisError as exc:
        # Said at once: while Redis is away the retry below may take ~15 s to publish, and an
        # operator reading the log should see why this routing stopped where it did.
        log.warning(
            "Redis unavailable while carrying out the routing (%s); it is tried again",
            exc.__class__.__name__,
            extra={"routing_id": job.routing_id, "contact_id": job.contact_id},
        )
        count_routing("retried", "redis_unavailable")
        outcome = RetryLater(
            min(5.0, ctx.settings.routing_max_countdown_seconds),
            f"Redis unavailable: {exc.__class__.__name__}",
        )
    if isinstance(outcome, RetryLater):
        _publish_retry(self, outcome)
    elif isinstance(outcome, Failed):
        raise RoutingFailed(task_state_text(outcome.reason))
    elif isinstance(outcome, Parked):
        # Parked in Redis with everything the message held: the message is acked, nothing waits
        # in this worker's memory. The result is what Flower shows for the task.
        return waiting_text(outcome.since, outcome.position)
    return None


def _publish_retry(task, outcome: RetryLater) -> None:
    """Publish the retry and raise Celery's ``Retry`` saying why; if Redis stayed away, requeue
    the message."""
    try:
        retry = task.retry(
            countdown=outcome.countdown, retry=True, retry_policy=RETRY_PUBLISH_POLICY, throw=False
        )
    except Reject as exc:  # Celery's wrapper around a publish that failed: it would drop the message
        log.error("retry could not be published; requeueing the message: %s", exc.reason)
        raise Reject(exc.reason, requeue=True) from exc
    raise readable_retry(task_state_text(outcome.reason, retry_in=outcome.countdown), retry)
