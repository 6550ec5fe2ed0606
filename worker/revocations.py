"""An operator's revoke of a routing task (Flower's "Revoke" or "Terminate") fails the routing.

Revoking a routing's task is an operator's decision to stop trying: the routing record becomes
``failed`` with "revoked by an operator", its message goes to the dead letters like any failure (so
``python -m ops dead-letters replay`` can send it again), and, being terminal, neither the orphan
sweeper nor a later copy of the message brings it back.

Celery delivers a revoke (Flower's ``POST /api/task/revoke/<task id>``, ``celery control revoke``)
as a broadcast to the workers running at that moment. They keep the id in memory and discard the
task when its message arrives or, for a retry waiting out its countdown, when it falls due
(https://docs.celeryq.dev/en/stable/userguide/workers.html#revoke-revoking-tasks). So:

1. A worker discards the task: Celery's ``task_revoked`` signal runs :func:`on_task_revoked`, which
   fails the routing and tells Flower why (a ``task-failed`` event after Celery's ``task-revoked``).
2. No worker heard the broadcast (none was running, or it restarted since, forgetting what it
   held in memory): the Celery app's control (:class:`RecordingControl`, what Flower and the
   ``celery control`` command use) also writes the revoked id to Redis, and the task looks there
   before anything else (:func:`revoked_by_operator`, then :func:`end_revoked`).
3. The revoke came while an attempt was running: that attempt finishes (a thread cannot be stopped,
   so "Terminate" acts like "Revoke"). If it moved the contact the routing stays ``routed``, which is
   the truth; if it retries, the retry carries the same task id and is discarded as in 1.
"""

from __future__ import annotations

import logging

import redis
from celery import signals
from celery.app.control import Control
from celery.utils.functional import maybe_list

from shared import redis_keys
from shared.routing.job import RoutingJob
from shared.routing.records import TERMINAL
from shared.task_queue import ROUTE_CONTACT_TASK
from worker.context import WorkerContext, worker_context
from worker.metrics import count_routing
from worker.routing import Failed
from worker.task_state import task_state_text

log = logging.getLogger(__name__)

#: The failure reason of a revoked routing, in its record, its dead letter and Flower.
REVOKED_REASON = "revoked by an operator"


class RecordingControl(Control):
    """Celery's remote control, plus: every revoke it broadcasts is also written to Redis."""

    def broadcast(self, command, arguments=None, *args, **kwargs):
        """Broadcast ``command``; a ``revoke`` is recorded first (a failure to record is logged,
        and the broadcast still goes out)."""
        if command == "revoke":
            task_ids = [str(task_id) for task_id in maybe_list((arguments or {}).get("task_id")) or []]
            try:
                ctx = worker_context()
                record_revoked(ctx.redis, task_ids, ctx.settings.routing_status_ttl_seconds)
            except redis.RedisError as exc:
                log.warning(
                    "revoke not recorded in Redis (%s): only running workers will know it",
                    exc.__class__.__name__,
                    extra={"task_ids": task_ids},
                )
        return super().broadcast(command, arguments, *args, **kwargs)


def record_revoked(client: redis.Redis, task_ids: list[str], ttl_seconds: int) -> None:
    """Remember that ``task_ids`` were revoked, for ``ttl_seconds``."""
    pipe = client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.set(redis_keys.task_revoked(task_id), "1", ex=ttl_seconds)
    pipe.execute()


def revoked_by_operator(ctx: WorkerContext, task_id: str | None) -> bool:
    """Whether an operator revoked this task (as recorded by :class:`RecordingControl`)."""
    return bool(task_id) and bool(ctx.redis.exists(redis_keys.task_revoked(str(task_id))))


def end_revoked(job: RoutingJob, ctx: WorkerContext) -> Failed | None:
    """Fail ``job``'s routing as revoked and dead-letter it; None if it had finished already."""
    record = ctx.store.get(job.routing_id)
    if record is not None and record.state in TERMINAL:
        return None  # routed (or failed) before the revoke took effect: that stays the truth
    if record is None:
        ctx.store.create(job)  # expired: a record to fail, so the dead letter can be replayed
    ctx.store.mark_failed(job.routing_id, REVOKED_REASON, job.to_message())
    count_routing("failed", "revoked")
    log.warning(
        "routing %s; dead-lettered",
        REVOKED_REASON,
        extra={"routing_id": job.routing_id, "contact_id": job.contact_id, "intent": job.intent},
    )
    return Failed(REVOKED_REASON)


def on_task_revoked(sender=None, request=None, expired: bool = False, **_: object) -> None:
    """``task_revoked``: Celery discarded a revoked routing task (and acked its message)."""
    if getattr(sender, "name", None) != ROUTE_CONTACT_TASK or request is None or expired:
        return
    try:
        job = RoutingJob.from_message(request.args[0])
    except Exception:  # noqa: BLE001 - a malformed message has no routing to fail
        log.warning("a revoked routing task had no readable message", extra={"task_id": request.id})
        return
    try:
        failed = end_revoked(job, worker_context())
    except redis.RedisError as exc:
        log.error(
            "revoked routing not marked failed: Redis unavailable (%s)",
            exc.__class__.__name__,
            extra={"routing_id": job.routing_id},
        )
        return
    if failed is not None:
        _tell_flower(sender.app, request, task_state_text(failed.reason))


def _tell_flower(app, request, text: str) -> None:
    """Send the ``task-failed`` event Flower shows (Celery's own ``task-revoked`` says no why)."""
    try:
        with app.events.default_dispatcher(hostname=request.hostname) as dispatcher:
            dispatcher.send("task-failed", uuid=request.id, exception=text, traceback=None)
    except Exception as exc:  # noqa: BLE001 - only a monitoring event; the record says it all
        log.warning("could not tell Flower about the revoke: %s", exc.__class__.__name__)


def connect() -> None:
    """Connect :func:`on_task_revoked` (idempotent)."""
    signals.task_revoked.connect(on_task_revoked, weak=False, dispatch_uid="router.task_revoked")
