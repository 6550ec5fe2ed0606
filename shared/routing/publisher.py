"""Hands a routing to the workers: duplicate guard, routing record, then the task message.

Used by the ingress (new webhooks) and by the operator CLI (dead-letter replay), so both go through
the same path and the same guards.

Order matters, and each step is what makes one guarantee hold:

1. **Claim the duplicate keys** (Cognigy's ``inputId``, and contact + intent) as ``pending:<id>``
   with a short TTL, atomically. A resend that finds a *settled* key gets the first routing's id; one
   that finds a *pending* key (the first copy is being enqueued right now) is asked to retry in a
   second, because that first copy may yet fail.
2. **Publish the task**, then **write the routing record** (create-if-absent: a fast worker may
   have created it already). Publishing first means a failed publish leaves nothing behind: no
   orphan record that claims a routing nobody will carry out. If the record write fails after a
   successful publish, the routing still happens: the worker creates the record itself.
3. Only once the task is safely in Redis, **settle the duplicate keys** to the routing id for
   ``DEDUPE_WINDOW_SECONDS``. If the publish failed, the claims are released and the caller
   answers 503, so the sender's retry is not mistaken for a duplicate of nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import redis
from kombu.exceptions import OperationalError

from shared import redis_keys
from shared.routing.job import RoutingJob
from shared.routing.records import RoutingStatusStore

log = logging.getLogger(__name__)

#: Errors that mean "Redis (the broker) is unreachable", from redis-py or from kombu.
BROKER_ERRORS = (redis.RedisError, OperationalError, OSError)
PENDING = "pending:"
#: How long a claim may stay pending: longer than the slowest publish (kombu retries included).
PENDING_TTL_SECONDS = 30
#: How long a resend waits for its in-flight twin to be settled before answering "retry shortly".
IN_FLIGHT_WAIT_SECONDS = 2.0

# KEYS = duplicate keys; ARGV = pending marker, ttl. Returns the first existing value, or nil after
# claiming every key.
_CLAIM = """
for i, key in ipairs(KEYS) do
    local existing = redis.call('GET', key)
    if existing then return existing end
end
for i, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[1], 'EX', tonumber(ARGV[2]))
end
return false
"""

# KEYS = duplicate keys; ARGV = pending marker. Removes only our own, still-pending claims.
_RELEASE = """
for i, key in ipairs(KEYS) do
    if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return true
"""


class EnqueueFailed(RuntimeError):
    """The routing could not be stored; nothing was enqueued."""


class DuplicateInFlight(RuntimeError):
    """The same webhook is being enqueued by another request right now; retry shortly."""


class NotReplayable(RuntimeError):
    """A replay was refused: the routing is not (or no longer) failed."""


@dataclass(frozen=True)
class Published:
    """The outcome of :meth:`RoutingPublisher.publish`."""

    routing_id: str
    duplicate: bool  # True: an earlier webhook already created this routing


def duplicate_keys(job: RoutingJob) -> list[str]:
    """The keys under which a resend of ``job``'s webhook is recognised."""
    keys = [redis_keys.dedupe_contact_intent(job.contact_id, job.intent)]
    if job.input_id:
        keys.insert(0, redis_keys.dedupe_input(job.input_id))
    return keys


class RoutingPublisher:
    """Guards against duplicates, stores the routing record and publishes the task with ``send``."""

    def __init__(
        self,
        client: redis.Redis,
        store: RoutingStatusStore,
        send: Callable[[dict], None],
        dedupe_window_seconds: int,
    ):
        self.redis = client
        self.store = store
        self.send = send
        self.dedupe_window_seconds = dedupe_window_seconds
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)

    def publish(self, job: RoutingJob) -> Published:
        """Enqueue ``job`` unless it duplicates a recent one.

        Raises :class:`DuplicateInFlight` or :class:`EnqueueFailed` (both answered 503 with
        Retry-After: the sender retries). Returns the routing id to give the sender.
        """
        keys = duplicate_keys(job) if self.dedupe_window_seconds > 0 else []
        marker = PENDING + job.routing_id
        if keys:
            existing = self._claim_or_wait(keys, marker)
            if existing is not None:
                return Published(existing, duplicate=True)
        try:
            self._send(job)
        except EnqueueFailed:
            self._release_quietly(keys, marker)
            raise
        self._record_and_settle(job, keys)
        return Published(job.routing_id, duplicate=False)

    def _claim_or_wait(self, keys: list[str], marker: str) -> str | None:
        """Claim ``keys`` for us (None), or return the routing id an earlier copy settled on.

        A copy still *pending* is waited for briefly (it is usually settled within milliseconds);
        if it fails, its claim disappears and this copy claims the keys itself.
        """
        deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
        while True:
            try:
                existing = self._claim(keys=keys, args=[marker, PENDING_TTL_SECONDS])
            except BROKER_ERRORS as exc:
                raise EnqueueFailed(f"duplicate check failed: {exc.__class__.__name__}") from exc
            if existing is None:
                return None
            existing = existing.decode() if isinstance(existing, bytes) else existing
            if not existing.startswith(PENDING):
                return existing
            if time.monotonic() >= deadline:
                raise DuplicateInFlight(existing[len(PENDING) :])
            time.sleep(0.02)

    def replay(self, routing_id: str) -> RoutingJob:
        """Send a dead-lettered routing through the workers again, with a fresh retry window.

        Only a routing whose record is ``failed`` (or expired) is replayed, so replaying twice, or
        replaying one that was routed since, does nothing. Raises :class:`NotReplayable` or
        :class:`EnqueueFailed`.
        """
        letter = self.store.dead_letter(routing_id)
        if letter is None:
            raise NotReplayable(f"{routing_id}: not in the dead-letter list")
        job = replace(RoutingJob.from_message(letter["job"]), received_at=time.time())
        if not self.store.claim_replay(job):
            state = getattr(self.store.get(routing_id), "state", "unknown")
            raise NotReplayable(f"{routing_id}: its routing is '{state}', not failed")
        try:
            self._send(job)
        except EnqueueFailed:
            self.store.mark_failed(routing_id, letter["reason"], letter["job"])  # as it was
            raise
        self.store.remove_dead_letter(routing_id)
        return job

    def _send(self, job: RoutingJob) -> None:
        try:
            self.send(job.to_message())
        except BROKER_ERRORS as exc:
            raise EnqueueFailed(f"cannot publish the task: {exc.__class__.__name__}") from exc

    def _record_and_settle(self, job: RoutingJob, keys: list[str]) -> None:
        """After the publish: write the record and settle the duplicate keys (one round trip)."""
        try:
            self.store.create(job, settle_keys=keys, settle_ttl=self.dedupe_window_seconds)
        except BROKER_ERRORS:
            # The task is queued: the worker writes the record when it takes it, and the pending
            # claims expire by themselves (a resend meanwhile gets "retry shortly", then at worst
            # a second routing to the same queue). Far better than a 503 for a routing we kept.
            log.warning(
                "routing record not written after publish; the worker will write it",
                extra={"routing_id": job.routing_id},
            )

    def _release_quietly(self, keys: list[str], marker: str) -> None:
        if not keys:
            return
        try:
            self._release(keys=keys, args=[marker])
        except BROKER_ERRORS:
            pass  # the pending claim expires after PENDING_TTL_SECONDS
