"""Drains the backlog (:mod:`shared.routing.backlog`) at the limiter's pace: one thread per worker.

Every worker process starts a :class:`Dispatcher` once Celery says it is ready (so the Procfile's
``worker`` line needs nothing more than before). Each loop:

1. Every few seconds, routings whose dispatcher died between pop and publish go back in the set
   (:meth:`Backlog.recover_expired`).
2. The head of the line is looked at first: one that has ended meanwhile (routed by a copy,
   failed, superseded) is dropped; one a newer routing of its contact has replaced is settled
   ``superseded`` here, without a slot or a task; one an operator revoked is failed as revoked.
   None of them spends a CXone call slot.
3. :meth:`Backlog.dispatch_next` pops the head only when a slot is free, and reserves that slot for
   it, atomically, so several workers' dispatchers never pop the same routing nor exceed the limit.
   The task message is published again from the record (what the original message held) under
   its original task id, then the dispatch lease is dropped.
4. Nothing to do: it sleeps until the slot frees (the limiter says when), or briefly when the set
   is empty.

A routing dispatched this way runs like any other (lease, latest routing, read-back, revocation);
its first CXone call spends the reserved slot (:meth:`Backlog.take_pass`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from marshmallow import ValidationError

from shared.cxone.rate_limiter import window_ms
from shared.routing.backlog import Backlog
from shared.routing.job import RoutingJob
from shared.routing.records import TERMINAL
from worker.context import WorkerContext
from worker.metrics import count_routing
from worker.revocations import end_revoked, revoked_by_operator

log = logging.getLogger(__name__)

#: How long an idle dispatcher sleeps when nobody waits (a routing parked meanwhile waits this long
#: at most for its turn, on top of the slot).
IDLE_SECONDS = 0.2
#: The longest sleep while the window is full or CXone's pause lasts (wakes to check the head).
MAX_SLEEP_SECONDS = 1.0
#: How often expired dispatch leases are looked for.
RECOVER_EVERY_SECONDS = 5.0

#: ``publish(message, task_id)``: sends the routing task (the worker's ``route_contact.apply_async``).
Publish = Callable[[dict, str | None], None]


class Dispatcher:
    """Hands the backlog's routings to the workers, oldest accepted first, one per free slot."""

    def __init__(self, ctx: WorkerContext, publish: Publish, clock: Callable[[], float] = time.monotonic):
        self.ctx = ctx
        self.publish = publish
        self.clock = clock
        self.backlog: Backlog = ctx.backlog
        self._stop = threading.Event()
        self._next_recover = 0.0

    def dispatch_once(self) -> tuple[str | None, float]:
        """One step: ``(routing id published, 0)`` or ``(None, seconds worth sleeping)``."""
        if self.clock() >= self._next_recover:
            self._next_recover = self.clock() + RECOVER_EVERY_SECONDS
            for routing_id in self.backlog.recover_expired():
                log.warning(
                    "a dispatch was interrupted; the routing is back in the backlog",
                    extra={"routing_id": routing_id},
                )
        head = self.backlog.head()
        if head is None:
            return None, IDLE_SECONDS
        if self._settle_head(head):
            return None, 0.0
        # The same limit and window as every CXone client's limiter (shared.cxone.client).
        answer = self.backlog.dispatch_next(self.ctx.settings.cxone_rate_limit_per_minute, window_ms())
        if answer.empty:
            return None, IDLE_SECONDS
        if answer.routing_id is None:
            return None, min(MAX_SLEEP_SECONDS, max(0.005, answer.wait))
        self._hand_over(answer.routing_id)
        return answer.routing_id, 0.0

    def _settle_head(self, routing_id: str) -> bool:
        """Settle the head without a slot when it needs none; True if it did (look again)."""
        record = self.ctx.store.get(routing_id)
        if record is None or record.state in TERMINAL:
            self.backlog.drop(routing_id)  # expired, or ended by another copy: nothing to do
            return True
        try:
            job = RoutingJob.from_message(record.job)
        except ValidationError as exc:  # never let one bad record block the line
            self.ctx.store.mark_failed(routing_id, f"malformed routing message: {exc.messages}", record.job)
            count_routing("failed", "permanent")
            return True
        if record.task_id and revoked_by_operator(self.ctx, record.task_id):
            end_revoked(job, self.ctx)
            self.backlog.drop(routing_id)
            return True
        latest = self.ctx.latest.get(job.contact_id)
        newer = latest is not None and latest.routing_id != job.routing_id
        if newer and latest is not None and (job.contact_seq is None or latest.seq > job.contact_seq):
            # Only a newer routing can be the contact's latest (it only grows), so this one would
            # be superseded when it runs: settle it now, without spending a call slot on a task.
            self.ctx.store.mark_superseded(job.routing_id, latest.routing_id)
            count_routing("superseded")
            log.info(
                "a newer routing for the contact replaces this waiting one; no call made",
                extra={
                    "routing_id": job.routing_id,
                    "contact_id": job.contact_id,
                    "superseded_by": latest.routing_id,
                },
            )
            return True
        return False

    def _hand_over(self, routing_id: str) -> None:
        """Publish the popped routing's task from its record; keep the lease if that fails."""
        record = self.ctx.store.get(routing_id)
        if record is None or record.state in TERMINAL:
            self.backlog.dispatched(routing_id)
            return
        # Handing it on is activity: the orphan sweeper must not take a routing parked long ago,
        # now on its way to a worker, for a lost one.
        self.ctx.store.touch(routing_id)
        self.publish(record.job, record.task_id)
        self.backlog.dispatched(routing_id)

    def start(self) -> threading.Thread:
        """Run until :meth:`stop` in a daemon thread."""
        thread = threading.Thread(target=self._run, name="backlog-dispatcher", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                _, sleep = self.dispatch_once()
            except redis.RedisError as exc:  # Redis away: the backlog is there when it is back
                log.warning("backlog dispatch paused: Redis unavailable (%s)", exc.__class__.__name__)
                sleep = MAX_SLEEP_SECONDS
            except Exception:  # never let the dispatcher thread die silently
                log.exception("backlog dispatch failed")
                sleep = MAX_SLEEP_SECONDS
            if sleep:
                self._stop.wait(sleep)


def start_with_worker() -> None:
    """Start a dispatcher in every worker process once Celery says the worker is ready."""
    from celery.signals import worker_ready

    from worker.context import worker_context
    from worker.tasks import RETRY_PUBLISH_POLICY, route_contact

    def publish(message: dict, task_id: str | None) -> None:
        # The original task id: Flower shows the routing as one task, and a revoke of it holds.
        route_contact.apply_async(
            args=[message], task_id=task_id, retry=True, retry_policy=RETRY_PUBLISH_POLICY
        )

    @worker_ready.connect(weak=False)
    def _start(**_: object) -> None:
        Dispatcher(worker_context(), publish).start()
