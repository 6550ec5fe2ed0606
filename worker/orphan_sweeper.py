"""Finds routings whose task message was lost, and publishes it again.

Why this exists: kombu's Redis transport takes a message with BRPOP and only then records it in its
``unacked`` hash, in a second round trip. A worker killed between the two (SIGKILL, OOM) loses that
message for good: it is neither in the queue nor restorable. The routing record, though, is still
open. So every worker runs this sweep in a background thread; a Redis lock lets only one of them
sweep per interval.

A routing is an orphan when all of these hold:
- its record is ``queued`` or ``retrying`` (never a terminal one: routed, failed or superseded)
  and has not changed for longer than any legitimate wait (visibility timeout + the longest
  countdown + a margin);
- no worker holds its contact's lease for it;
- it is not waiting in the backlog for a call slot (:mod:`shared.routing.backlog`), where it is
  kept with everything its message held (a record ``waiting`` outside the backlog lost its
  dispatch: publishing it again is exactly what it needs);
- its message is neither among the unacked messages (those come back by themselves) nor waiting
  in the routing queue (a worker will take it: it may be a task an operator revoked while no
  worker ran, which a copy under a new task id would carry out after all);
- the routing queue is short, so a stale record is not merely waiting behind a backlog.

Publishing a copy is safe even if the original turns up after all: the worker's state check and
lease make the second copy a no-op, and a voice signal is guarded by its own marker.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable

import redis

from shared import redis_keys
from shared.routing.records import RETRYING, TERMINAL
from shared.task_queue import ROUTING_QUEUE
from worker.context import WorkerContext
from worker.routing import ContactLease

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 15.0
#: Above this many waiting messages, a stale record is probably just queued behind the others.
BACKLOG_LIMIT = 100
STALE_MARGIN_SECONDS = 15.0


class OrphanSweeper:
    """Re-publishes lost routings; ``sweep_once`` is the unit of work, ``start`` runs it forever."""

    def __init__(
        self, ctx: WorkerContext, republish: Callable[[dict], None], interval: float = SWEEP_INTERVAL_SECONDS
    ):
        self.ctx = ctx
        self.republish = republish
        self.interval = interval
        self._stop = threading.Event()

    @property
    def stale_after(self) -> float:
        s = self.ctx.settings
        return s.broker_visibility_timeout_seconds + s.routing_max_countdown_seconds + STALE_MARGIN_SECONDS

    def sweep_once(self) -> list[str]:
        """One sweep (if this process wins the sweep lock); returns the routing ids re-published."""
        client = self.ctx.redis
        if not client.set(
            redis_keys.ORPHAN_SWEEP_LOCK, "1", nx=True, px=int(max(1.0, self.interval - 1) * 1000)
        ):
            return []
        if client.llen(ROUTING_QUEUE) >= BACKLOG_LIMIT:
            return []
        now = time.time()
        stale = [
            record
            for record in self.ctx.store.open_older_than(self.stale_after)
            if _last_activity(record) < now - self.stale_after
        ]
        # Routings waiting in the backlog (or being handed over from it) are not lost: they wait
        # for their turn, however long ago they were parked (one round trip for all of them).
        waiting = self.ctx.backlog.contains([record.routing_id for record in stale])
        candidates = [
            record
            for record in stale
            if record.routing_id not in waiting
            and ContactLease.holder_of(client, str(record.job.get("contact_id"))) != record.routing_id
        ]
        if not candidates:
            return []
        pending = unacked_routing_ids(client) | queued_routing_ids(client)
        republished = []
        for record in candidates:
            if record.routing_id in pending or self._moved_on(record):
                continue
            self.ctx.store.touch(record.routing_id)  # so the next sweep does not resend it again
            self.republish(record.job)
            republished.append(record.routing_id)
            log.warning(
                "re-published a routing whose task message was lost",
                extra={
                    "routing_id": record.routing_id,
                    "contact_id": record.job.get("contact_id"),
                    "intent": record.job.get("intent"),
                },
            )
        return republished

    def _moved_on(self, record) -> bool:
        """Whether the routing changed since the sweep listed it (ended, or was handed on): then
        its message was merely between two places when the sweep looked."""
        now = self.ctx.store.get(record.routing_id)
        return now is None or now.state in TERMINAL or now.updated_at != record.updated_at

    def start(self) -> threading.Thread:
        """Sweep every ``interval`` seconds in a daemon thread until :meth:`stop`."""
        thread = threading.Thread(target=self._run, name="orphan-sweeper", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep_once()
            except redis.RedisError as exc:  # Redis away: try again next round
                log.warning("orphan sweep skipped: %s", exc.__class__.__name__)
            except Exception:  # never let the sweeper thread die silently
                log.exception("orphan sweep failed")


def _last_activity(record) -> float:
    if record.state == RETRYING and record.next_attempt_at:
        return max(record.updated_at, record.next_attempt_at)
    return record.updated_at


def unacked_routing_ids(client: redis.Redis) -> set[str]:
    """Routing ids of the messages kombu holds as delivered-but-unacked (they will be restored)."""
    ids: set[str] = set()
    for raw in client.hvals("unacked"):
        try:
            ids.add(_routing_id_of(json.loads(raw)[0]))
        except (ValueError, KeyError, IndexError, TypeError):
            continue  # not one of ours
    return ids


def queued_routing_ids(client: redis.Redis, limit: int = BACKLOG_LIMIT) -> set[str]:
    """Routing ids of the (first ``limit``) messages waiting in the routing queue."""
    ids: set[str] = set()
    for raw in client.lrange(ROUTING_QUEUE, 0, limit - 1):
        try:
            ids.add(_routing_id_of(json.loads(raw)))
        except (ValueError, KeyError, IndexError, TypeError):
            continue  # not one of ours
    return ids


def _routing_id_of(payload: dict) -> str:
    """The routing id in a kombu message as its Redis transport stores it."""
    body = payload["body"]
    if payload.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return args[0]["routing_id"]


def start_with_worker() -> None:
    """Start a sweeper in every worker process once Celery says the worker is ready."""
    from celery.signals import worker_ready

    from worker.context import worker_context
    from worker.tasks import route_contact

    @worker_ready.connect(weak=False)
    def _start(**_: object) -> None:
        OrphanSweeper(worker_context(), lambda job: route_contact.apply_async(args=[job])).start()
