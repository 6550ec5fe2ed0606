"""Hands a routing to the workers: duplicate guard, routing record, then the task message.

Used by the ingress (new webhooks) and by the operator CLI (dead-letter replay), so both go through
the same path and the same guards.

Which webhooks are resends (:func:`resend_rule`): one with an ``inputId`` (Cognigy's id of one user
input) is a resend exactly when an earlier webhook had the same ``inputId`` within
``DEDUPE_WINDOW_SECONDS``; nothing else counts. One without an ``inputId`` is a resend only when the
contact's latest routing has the same intent and arrived less than ``DEDUPE_CONTACT_INTENT_SECONDS``
ago (see :mod:`shared.routing.latest`), so a customer who asks for billing, then sales, then billing
again gets three routings.

Order matters, and each step is what makes one guarantee hold:

1. **Claim** (one Lua call, :meth:`LatestRoutings.claim`): recognise a resend, or number the routing
   among its contact's routings (``contact_seq``) and claim its duplicate key as *pending* (the
   inputId key, or a pending mark on the contact's latest routing), atomically. A resend that finds
   a *settled* routing gets its id; one that finds a *pending* claim (the first copy is being
   enqueued right now) waits briefly, because that first copy may yet fail.
2. **Queue the task, write the routing record and settle the claim**: the inputId key is set to
   the routing id for ``DEDUPE_WINDOW_SECONDS``, and the routing becomes its contact's latest.
   The ingress does all of it in one Lua script (:class:`~shared.task_envelope.TaskEnvelopes`
   builds the Celery message and its ``task-sent`` event), so they happen together or not at all:
   no orphan record that claims a routing nobody will carry out, no task without its record. The
   record is created only if absent (a fast worker may have created it already).
   Without envelopes (the operator CLI, tests that record what is sent), the task is published
   with ``send`` first and the record written after it; if that write fails, the routing still
   happens: the worker creates the record itself.
   While routings wait in the backlog for a CXone call slot (:mod:`shared.routing.backlog`), a
   new routing joins them instead (in the same script, or in one round trip of its own without
   envelopes: record ``waiting``, backlog, settle): a task would only be refused a slot and park
   it there, and a dispatcher publishes its task when its turn comes.
3. If the task could not be queued, the claim is released and the caller answers 503, so the
   sender's retry is not mistaken for a duplicate of nothing.
4. **Confirm** (``confirm``, :class:`shared.redis_connection.ReplicaAck` when
   ``REDIS_MIN_REPLICAS_ACK`` > 0): the writes reached the replicas, or :class:`EnqueueFailed` (503)
   although the routing is queued on the primary. The sender's retry is then a resend: it is
   confirmed again and answered with the same routing, or, if a failover lost the writes, the
   retry finds nothing and queues the routing afresh.

A claim that stays *pending* past :data:`IN_FLIGHT_WAIT_SECONDS` belongs to a request that died
between its claim and its settle: a request stopped by a failover, whose claim (and perhaps task
message, never the record without the message: Redis replicates in order) reached the new primary.
The resend **takes it over**: the same routing id and number, re-published unless its record
exists, then settled. If the lost request's message survived too there are two messages for one
routing, which the worker carries out once (its state check, the contact's lease and the
routing's PUT marker); a new routing id instead would move the contact twice. Pending claims live
as long as the resend window (``PENDING_TTL_SECONDS`` at least) so a late retry still finds them.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import redis
from kombu.exceptions import OperationalError

from shared.routing.job import RoutingJob
from shared.routing.latest import (
    BY_CONTACT_INTENT,
    BY_INPUT_ID,
    CLAIMED,
    DUPLICATE,
    NOT_CHECKED,
    PENDING,
    Claim,
    LatestRoutings,
    input_key,
)
from shared.routing.records import RoutingStatusStore
from shared.task_envelope import TaskEnvelopes

log = logging.getLogger(__name__)

#: Errors that mean "Redis (the broker) is unreachable", from redis-py or from kombu.
BROKER_ERRORS = (redis.RedisError, OperationalError, OSError)
#: The shortest a claim may stay pending: longer than the slowest publish (kombu retries included).
#: A claim lives as long as its rule's resend window when that is longer, so a resend after a
#: failover finds the routing the lost request may have queued, and takes it over.
PENDING_TTL_SECONDS = 30
#: How long a resend waits for its in-flight twin to be settled before answering "retry shortly".
IN_FLIGHT_WAIT_SECONDS = 2.0
#: What the record of a routing parked by the ingress says it waits for (as a parking worker says).
WAITING_FOR_SLOT = "waiting for a CXone call slot (CXONE_RATE_LIMIT_PER_MINUTE), behind the backlog"
#: DEDUPE_CONTACT_INTENT_SECONDS's default (shared/settings.py), for callers that do not pass it.
DEFAULT_CONTACT_INTENT_SECONDS = 60


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


def resend_rule(job: RoutingJob, input_window: int, contact_intent_window: int) -> str:
    """How a resend of ``job``'s webhook is recognised: by its inputId alone when it has one
    (:data:`BY_INPUT_ID`), else by the contact's latest routing (:data:`BY_CONTACT_INTENT`);
    :data:`NOT_CHECKED` when that rule's window is 0 (turned off)."""
    if job.input_id:
        return BY_INPUT_ID if input_window > 0 else NOT_CHECKED
    return BY_CONTACT_INTENT if contact_intent_window > 0 else NOT_CHECKED


class RoutingPublisher:
    """Guards against duplicates, stores the routing record and publishes the task with ``send``."""

    def __init__(
        self,
        client: redis.Redis,
        store: RoutingStatusStore,
        send: Callable[[dict], None],
        dedupe_window_seconds: int,
        contact_intent_window_seconds: int = DEFAULT_CONTACT_INTENT_SECONDS,
        *,
        envelopes: TaskEnvelopes | None = None,
        confirm: Callable[[], object] | None = None,
        join_backlog: bool = True,
    ):
        """``confirm``: called once the routing's writes are made (and for a resend); raises a
        Redis error when they are not safe yet (the replicas did not acknowledge them)."""
        self.redis = client
        self.confirm = confirm
        self.store = store
        self.send = send
        #: Given: new routings are queued with their record in one script (``send`` is then only
        #: used by :meth:`replay`).
        self.envelopes = envelopes
        self.dedupe_window_seconds = dedupe_window_seconds
        self.contact_intent_window_seconds = contact_intent_window_seconds
        #: Park a new routing behind a non-empty backlog instead of publishing its task.
        self.join_backlog = join_backlog
        self.latest = LatestRoutings(client, store.ttl_seconds)

    def publish(self, job: RoutingJob) -> Published:
        """Enqueue ``job`` unless it is a resend of an earlier webhook (see :func:`resend_rule`).

        Raises :class:`DuplicateInFlight` or :class:`EnqueueFailed` (both answered 503 with
        Retry-After: the sender retries). Returns the routing id to give the sender; the task
        message carries the routing's ``contact_seq``.
        """
        rule = resend_rule(job, self.dedupe_window_seconds, self.contact_intent_window_seconds)
        claim = self._claim_or_wait(job, rule)
        if claim.outcome == DUPLICATE:
            self._confirm()
            return Published(claim.routing_id or "", duplicate=True)
        if claim.outcome == PENDING:
            return self._take_over(job, rule, claim)
        job = replace(job, contact_seq=claim.seq)
        if self.envelopes is not None:  # joins the backlog in the same script when routings wait
            self._queue_with_record(job, rule, self.envelopes)
            self._confirm()
            return Published(job.routing_id, duplicate=False)
        if self.join_backlog and self._joined_backlog(job, rule):
            self._confirm()
            return Published(job.routing_id, duplicate=False)
        try:
            self._send(job)
        except EnqueueFailed:
            self._release_quietly(job, rule)
            raise
        self._record_and_settle(job, rule)
        self._confirm()
        return Published(job.routing_id, duplicate=False)

    def _queue_with_record(
        self, job: RoutingJob, rule: str, envelopes: TaskEnvelopes, *, release_on_failure: bool = True
    ) -> None:
        """Queue the task, write its record and settle the claim: one script, one round trip.

        If Redis did not answer, the script either ran whole or not at all; releasing the claim is
        right in both cases (a settled claim is no longer pending, so the release leaves it), and
        the sender's retry then finds the routing or queues it.
        """
        keys = [input_key(job)] if rule == BY_INPUT_ID else []
        try:
            self.store.create(
                job,
                settle_keys=keys,
                settle_ttl=self.dedupe_window_seconds,
                task=envelopes.build(job.to_message()),
                waiting_for=WAITING_FOR_SLOT,
            )
        except BROKER_ERRORS as exc:
            if release_on_failure:
                self._release_quietly(job, rule)
            raise EnqueueFailed(f"cannot queue the task: {exc.__class__.__name__}") from exc

    def _take_over(self, job: RoutingJob, rule: str, claim: Claim) -> Published:
        """Finish the routing of a request that claimed it and never settled (see the module doc):
        same routing id and number, re-published unless its record shows it was queued."""
        adopted = replace(job, routing_id=claim.routing_id or job.routing_id, contact_seq=claim.seq)
        try:
            queued = self.store.get(adopted.routing_id) is not None
        except BROKER_ERRORS as exc:
            raise EnqueueFailed(f"duplicate check failed: {exc.__class__.__name__}") from exc
        if not queued:
            log.warning(
                "took over a routing whose request never finished queueing it",
                extra={"routing_id": adopted.routing_id, "contact_id": job.contact_id},
            )
        # On failure the claim stays pending: it is the lost request's, not ours to release.
        if not queued and self.envelopes is not None:
            self._queue_with_record(adopted, rule, self.envelopes, release_on_failure=False)
        else:
            if not queued:
                self._send(adopted)
            self._record_and_settle(adopted, rule)
        self._confirm()
        return Published(adopted.routing_id, duplicate=True)

    def _confirm(self) -> None:
        if self.confirm is None:
            return
        try:
            self.confirm()
        except BROKER_ERRORS as exc:
            raise EnqueueFailed(f"not kept by the replicas: {exc}") from exc

    def _claim_or_wait(self, job: RoutingJob, rule: str) -> Claim:
        """Claim ``job``'s place (CLAIMED, with its number), or the routing an earlier copy settled
        on (DUPLICATE).

        A copy still *pending* is waited for briefly (it is usually settled within milliseconds);
        if it fails, its claim disappears and this copy claims for itself. One still pending after
        the wait is returned (PENDING) to be taken over, or, if its number is unknown (a claim
        written before claims kept it), answered :class:`DuplicateInFlight`.
        """
        deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
        while True:
            try:
                claim = self.latest.claim(
                    job,
                    rule,
                    contact_window=self.contact_intent_window_seconds,
                    pending_ttl=self._pending_ttl(rule),
                )
            except BROKER_ERRORS as exc:
                raise EnqueueFailed(f"duplicate check failed: {exc.__class__.__name__}") from exc
            if claim.outcome in (CLAIMED, DUPLICATE):
                return claim
            if time.monotonic() >= deadline:
                if claim.seq is not None:
                    return claim  # still pending: its request died (see _take_over)
                raise DuplicateInFlight(claim.routing_id)
            time.sleep(0.02)

    def _pending_ttl(self, rule: str) -> int:
        window = self.dedupe_window_seconds if rule == BY_INPUT_ID else self.contact_intent_window_seconds
        return max(PENDING_TTL_SECONDS, window)

    def replay(self, routing_id: str) -> RoutingJob:
        """Send a dead-lettered routing through the workers again, with a fresh retry window.

        Only a routing whose record is ``failed`` (or expired) is replayed, so replaying twice, or
        replaying one that was routed since, does nothing. The replay is numbered as its contact's
        newest routing: an operator decided it, so it supersedes the contact's older routings.
        Raises :class:`NotReplayable` or :class:`EnqueueFailed`.
        """
        letter = self.store.dead_letter(routing_id)
        if letter is None:
            raise NotReplayable(f"{routing_id}: not in the dead-letter list")
        job = replace(RoutingJob.from_message(letter["job"]), received_at=time.time())
        job = replace(job, contact_seq=self._number(job))
        if not self.store.claim_replay(job):
            state = getattr(self.store.get(routing_id), "state", "unknown")
            raise NotReplayable(f"{routing_id}: its routing is '{state}', not failed")
        try:
            self._send(job)
        except EnqueueFailed:
            self.store.mark_failed(routing_id, letter["reason"], letter["job"])  # as it was
            raise
        self.latest.advance(job)
        self.store.remove_dead_letter(routing_id)
        return job

    def _number(self, job: RoutingJob) -> int | None:
        """A new ``contact_seq`` for ``job`` (no duplicate check: an operator replays on purpose)."""
        try:
            claim = self.latest.claim(job, NOT_CHECKED, contact_window=0, pending_ttl=PENDING_TTL_SECONDS)
        except BROKER_ERRORS as exc:
            raise EnqueueFailed(f"cannot number the routing: {exc.__class__.__name__}") from exc
        return claim.seq

    def _send(self, job: RoutingJob) -> None:
        try:
            self.send(job.to_message())
        except BROKER_ERRORS as exc:
            raise EnqueueFailed(f"cannot publish the task: {exc.__class__.__name__}") from exc

    def _joined_backlog(self, job: RoutingJob, rule: str) -> bool:
        """Park ``job`` behind the routings waiting for a call slot, if any wait (record, backlog
        and settled claim in one step). False: none waits, publish as usual."""
        keys = [input_key(job)] if rule == BY_INPUT_ID else []
        try:
            return self.store.create_waiting_if_backlog(
                job,
                str(uuid.uuid4()),
                WAITING_FOR_SLOT,
                settle_keys=keys,
                settle_ttl=self.dedupe_window_seconds,
            )
        except BROKER_ERRORS as exc:
            self._release_quietly(job, rule)
            raise EnqueueFailed(f"cannot store the routing: {exc.__class__.__name__}") from exc

    def _record_and_settle(self, job: RoutingJob, rule: str) -> None:
        """After the publish: write the record, settle the claim and advance the contact's latest
        routing (one round trip)."""
        keys = [input_key(job)] if rule == BY_INPUT_ID else []
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

    def _release_quietly(self, job: RoutingJob, rule: str) -> None:
        if rule == NOT_CHECKED:
            return
        try:
            self.latest.release(job, rule)
        except BROKER_ERRORS:
            pass  # the pending claim expires after PENDING_TTL_SECONDS
