"""Carrying out one routing: the worker's logic as plain functions, free of Celery.

The Celery task (``worker.tasks``) only translates what this returns: :class:`RetryLater` into
``self.retry(countdown=…)``, :class:`Failed` into a task that ends FAILURE. Everything that decides
*whether* and *when* lives here, so it can be unit-tested by calling it.

Guarantees kept here:
- a routing already ``routed``, ``failed`` or ``superseded`` is never carried out again (duplicate
  delivery);
- one routing at a time per contact (a lease in Redis, :class:`ContactLease`), so two copies of one
  message never run at once, and a contact's routings never race each other;
- the newest routing for a contact wins: under the lease, a routing older than the contact's latest
  is ``superseded`` without a CXone call (:mod:`shared.routing.latest`); one already running when a
  newer one arrives finishes first, and the newer one waits for the lease;
- a contact id that is not a CXone contact id (``CONTACT_ID_PATTERN``) never reaches a CXone URL:
  such a message (a replay of one published before the ingress checked ids) is failed at once;
- a voice signal is sent at most once per routing: if its outcome is unknown it is not re-sent but
  dead-lettered for an operator to check;
- a digital contact is moved at most once per routing: a marker is set before the routing-queue
  PUT leaves, and a routing carried out again while an earlier attempt's outcome is unknown reads
  the contact back first and settles without a second PUT when it shows the first one took effect
  (or that an agent has the contact, or that it is over; :mod:`shared.routing.read_back`);
- a message redelivered again and again (a poison message that kills its worker) is dead-lettered;
- a routing refused a CXone call slot (our limiter, or CXone's pause after a 429 with Retry-After)
  is parked in the backlog in Redis (state ``waiting``; :mod:`shared.routing.backlog`), not kept
  in a Celery countdown in the worker's memory; a dispatcher (``worker.dispatcher``) hands it back
  to a worker, oldest accepted first, when a slot is free;
- transient failures retry with backoff until ``ROUTING_RETRY_WINDOW_SECONDS`` after the webhook
  (or after the routing last left the backlog: waiting for a slot is no failure), then the
  routing is ``failed`` and dead-lettered with the payload and the reason.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid
from dataclasses import dataclass

import redis
from redis.commands.core import Script

from shared import redis_keys
from shared.cxone.errors import (
    CredentialsRejected,
    OutcomeUnknown,
    PausedByCXone,
    Permanent,
    RateLimited,
    Throttled,
    Transient,
)
from shared.cxone.single_flight import delete_if_equal
from shared.routing.backlog import Parked, carrying
from shared.routing.contact_id import is_contact_id, shown
from shared.routing.job import RoutingJob
from shared.routing.read_back import CONFIRMED_BY, ROUTED, ReadBack, judge
from shared.routing.records import (
    CREATE_FUNCTION_LUA,
    TERMINAL,
    RoutingRecord,
    create_args,
    create_keys,
    record_from_hash,
)
from shared.routing.signal_template import DEFAULT_SIGNAL_PARAMS, render, signal_values
from worker.context import WorkerContext
from worker.metrics import count_routing
from worker.overflow import choose_queue

log = logging.getLogger(__name__)

#: How often the same attempt may be redelivered (worker killed while running it) before the
#: message is treated as poison and dead-lettered instead of looping forever.
MAX_REDELIVERIES = 3


@dataclass(frozen=True)
class RetryLater:
    """Run the routing again in ``countdown`` seconds. ``reason`` is shown in Flower: our words,
    never CXone's (see ``CXoneError.summary``)."""

    countdown: float
    reason: str


@dataclass(frozen=True)
class Failed:
    """The routing was recorded ``failed`` and dead-lettered just now. ``reason`` is the short
    form shown in Flower (the record keeps the full one)."""

    reason: str


def process(
    job: RoutingJob,
    ctx: WorkerContext,
    *,
    attempt: int = 0,
    redelivered: bool = False,
    task_id: str | None = None,
) -> RetryLater | Failed | Parked | None:
    """Carry out ``job`` once; return :class:`RetryLater` when it should be tried again later,
    :class:`Failed` when this run failed it, :class:`~shared.routing.backlog.Parked` when it now
    waits in the backlog for a call slot (its message, ``task_id``, may be acked), None when it is
    done (or was already)."""
    fields = {"routing_id": job.routing_id, "contact_id": job.contact_id, "intent": job.intent}
    if redelivered and (poisoned := _dead_letter_if_poison(job, ctx, attempt, fields)) is not None:
        return poisoned
    lease = ContactLease(ctx.redis, job, ctx.settings.broker_visibility_timeout_seconds)
    begun = begin(job, ctx, lease)
    if begun.record is not None and begun.record.state in TERMINAL:
        # Checked before the lease is taken, so a late copy of a finished routing does not wait
        # for the contact's other routings.
        log.info("routing already %s; duplicate delivery ignored", begun.record.state, extra=fields)
        return None
    with lease:
        if not lease.held:
            return _wait_for_lease(job, ctx, lease, begun.record)
        if begun.newer is not None:
            _supersede(job, ctx, begun.newer, fields)
            return None
        return _process_leased(job, ctx, fields, begun.record, lease, task_id)


@dataclass(frozen=True)
class Begun:
    """What :func:`begin` found: the record as it was (None: there was none), and, when the lease
    was taken, the id of a newer routing of the contact that supersedes this one (None: none)."""

    record: RoutingRecord | None
    newer: str | None = None


# KEYS = record, open index, contact latest, lease. ARGV[1..8] as records' create_if_absent; ARGV[9]
# = the lease's value, ARGV[10] its seconds, ARGV[11] how long the contact's latest is kept.
# Returns {0, record} when the record is terminal (the lease is not taken), {1, record} when another
# routing holds the lease, {2, record, newer id or ''} once the lease is ours: the record is then
# created if it was missing, and the routing made the contact's latest unless a newer one is.
_BEGIN = (
    CREATE_FUNCTION_LUA
    + """
local record = redis.call('HGETALL', KEYS[1])
local state
for i = 1, #record, 2 do
    if record[i] == 'state' then state = record[i + 1] end
end
if TERMINAL then return {0, record} end
if not redis.call('SET', KEYS[4], ARGV[9], 'NX', 'EX', tonumber(ARGV[10])) then
    return {1, record}
end
if #record == 0 then create_if_absent(5) end
if ARGV[7] == '' then  -- a message from before contact_seq: it yields to any routing that has one
    local newest = redis.call('HGET', KEYS[3], 'routing_id')
    if newest and newest ~= ARGV[5] then return {2, record, newest} end
    return {2, record, ''}
end
local seq = tonumber(ARGV[7])
if advance(KEYS[3], ARGV[5], seq, ARGV[8], ARGV[2], tonumber(ARGV[11])) > seq then
    return {2, record, redis.call('HGET', KEYS[3], 'routing_id')}
end
return {2, record, ''}
""".replace("if TERMINAL then", "if " + " or ".join(f"state == '{state}'" for state in TERMINAL) + " then")
)


@functools.lru_cache(maxsize=16)
def _begin_script(client: redis.Redis) -> Script:
    """:data:`_BEGIN` registered on ``client`` (run by its SHA1, loaded once)."""
    return client.register_script(_BEGIN)


def begin(job: RoutingJob, ctx: WorkerContext, lease: ContactLease) -> Begun:
    """Read the record, take the contact's lease and start the routing, in one round trip.

    The same steps as reading the record, ``SET NX`` on the lease, reading the record again under
    it, creating it when missing (an expired record, or one lost with Redis) and
    :meth:`~shared.routing.latest.LatestRoutings.start`, done atomically: four round trips fewer per
    routing, and no moment between the lease and the read where another copy could act. The lease
    is taken only when the routing is not finished; ``lease.held`` says whether it was.
    """
    answer = _begin_script(ctx.redis)(
        keys=[*create_keys(job), lease.key],
        args=[
            *create_args(job, ctx.store.ttl_seconds),
            lease.value,
            lease.seconds,
            ctx.latest.keep_seconds,
        ],
    )
    outcome, raw = int(answer[0]), answer[1]
    record = record_from_hash(job.routing_id, raw)
    lease.taken(outcome == 2)
    newer = answer[2] if outcome == 2 and answer[2] else None
    return Begun(record, _routing_of(newer) if newer is not None else None)


def _wait_for_lease(
    job: RoutingJob, ctx: WorkerContext, lease: ContactLease, record: RoutingRecord | None
) -> RetryLater:
    """Another routing of the contact (or another copy of this one) is running: check again soon.

    Never drop this copy: it may be the only one left. A worker carrying a routing out holds the
    lease for one CXone call, so a lease taken just now is retried within a second; one held for
    long (its worker may have died) is retried about as late as it has been held, and never later
    than it expires by itself.
    """
    cap = ctx.settings.routing_max_countdown_seconds
    count_routing("retried", "in_flight")
    countdown = min(cap, lease.wait_hint() + ctx.rng.uniform(0.1, 1.0))
    holder = lease.holder()
    if holder is None or holder == job.routing_id:
        return RetryLater(countdown, "another worker holds this routing")
    reason = f"waiting for routing {holder} of the same contact to finish"
    if record is not None:
        # Shown by GET /routings/<id>: the routing is not stuck, it is queued behind another.
        ctx.store.mark_retrying(job.routing_id, reason, time.time() + countdown, counts_as_attempt=False)
    return RetryLater(countdown, reason)


class ContactLease:
    """A Redis key that lets one routing of a contact run at a time.

    ``with ContactLease(…) as lease:`` tries to take it; ``lease.held`` says whether it did. A lease
    taken here is let go when the block ends (only if it is still ours); one held by another
    routing (or another copy of this one: same routing, same contact) is left alone. It expires by
    itself, so a worker that dies holding it blocks the contact only until then.
    """

    def __init__(self, client: redis.Redis, job: RoutingJob, seconds: int):
        self.redis = client
        self.key = redis_keys.contact_lease(job.contact_id)
        # The routing id first (see holder_of), then a token: a copy of the same routing that took
        # the lease after ours expired is not ours to delete.
        self.value = f"{job.routing_id} {uuid.uuid4().hex}"
        self.seconds = seconds
        self.held = False
        self._taken: bool | None = None

    def __enter__(self) -> ContactLease:
        if self._taken is None:
            self.held = bool(self.redis.set(self.key, self.value, nx=True, ex=self.seconds))
        return self

    def taken(self, held: bool) -> None:
        """Say that the lease was tried elsewhere (:func:`begin`'s script) and whether it was taken;
        the ``with`` block then leaves it as it is and only lets it go at the end."""
        self._taken = held
        self.held = held

    def __exit__(self, *exc_info: object) -> None:
        if self.held:
            delete_if_equal(self.redis, self.key, self.value)
            self.held = False

    def holder(self) -> str | None:
        """The routing id that holds the lease now (None: nobody)."""
        return _routing_of(self.redis.get(self.key))

    def wait_hint(self) -> float:
        """Seconds worth waiting for the holder: as long as it has held the lease, at most until
        the lease expires by itself (at least 0)."""
        left = max(0.0, float(self.redis.ttl(self.key) or 0))
        return min(left, max(0.0, self.seconds - left))

    @staticmethod
    def holder_of(client: redis.Redis, contact_id: str) -> str | None:
        """The routing id whose worker holds ``contact_id``'s lease now (None: nobody)."""
        return _routing_of(client.get(redis_keys.contact_lease(contact_id)))


def _routing_of(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    return text.split(" ", 1)[0]


def _process_leased(
    job: RoutingJob,
    ctx: WorkerContext,
    fields: dict,
    record: RoutingRecord | None,
    lease: ContactLease,
    task_id: str | None,
) -> RetryLater | Failed | Parked | None:
    # The state was read as the lease was taken (begin), and is settled before letting go, so a
    # second copy can never see a half-finished routing.
    # Dispatched from the backlog: the first call spends the slot reserved for it.
    ticket = ctx.backlog.take_pass(job.routing_id)
    try:
        with carrying(ticket):
            skill_id, read_back = _carry_out(job, ctx)
    except Permanent as exc:
        cause = "outcome_unknown" if isinstance(exc, OutcomeUnknown) else "permanent"
        return _fail(job, ctx, exc.reason, cause, fields, shown=exc.summary)
    except Transient as exc:
        if parks(exc):
            return _park(job, ctx, exc, fields, task_id)
        if ticket is not None and record is not None:
            record = ctx.store.get(job.routing_id) or record  # with the time it left the backlog
        return _plan_retry(job, ctx, exc, record, fields)
    if read_back is not None:
        return _settle_by_read_back(job, ctx, skill_id, read_back, fields)
    # The lease goes in the same transaction as the state (one round trip less).
    ctx.store.mark_routed(job.routing_id, skill_id, release=(lease.key, lease.value))
    lease.held = False  # let go in that transaction, if it was still ours
    count_routing("routed")
    log.info("contact routed to skill %s", skill_id, extra={**fields, "skill_id": skill_id})
    return None


def _settle_by_read_back(
    job: RoutingJob, ctx: WorkerContext, skill_id: int, read_back: ReadBack, fields: dict
) -> Failed | None:
    """End the routing as the contact read back showed it, without a second PUT."""
    seen = read_back.seen()
    if read_back.decision == ROUTED:
        ctx.store.mark_routed(job.routing_id, skill_id, confirmed_by=CONFIRMED_BY, read_back=seen)
        count_routing("routed")
        log.info(
            "contact read back instead of moved again: %s",
            read_back.why,
            extra={**fields, "skill_id": skill_id, "read_back": seen},
        )
        return None
    reason = (
        f"{read_back.why} (read back after an earlier attempt whose outcome is unknown); "
        "the contact was not moved again"
    )
    return _fail(job, ctx, reason, "permanent", {**fields, "read_back": seen}, read_back=seen)


def _supersede(job: RoutingJob, ctx: WorkerContext, newer: str, fields: dict) -> None:
    """End the routing as ``superseded`` by ``newer`` (same contact): no call, nothing to replay."""
    ctx.store.mark_superseded(job.routing_id, newer)
    count_routing("superseded")
    log.info(
        "a newer routing for the contact replaces this one; no call made",
        extra={**fields, "superseded_by": newer},
    )


def _fail(
    job: RoutingJob,
    ctx: WorkerContext,
    reason: str,
    cause: str,
    fields: dict,
    *,
    shown: str | None = None,
    read_back: dict | None = None,
) -> Failed:
    """End the routing as ``failed``: dead-lettered with its message for replay, counted under
    ``cause`` (the metric's failure reason) and logged. ``shown`` is what Flower may show, when
    ``reason`` may quote CXone; ``read_back``: what the contact read back showed, when that
    decided it."""
    ctx.store.mark_failed(
        job.routing_id,
        reason,
        job.to_message(),
        confirmed_by=CONFIRMED_BY if read_back is not None else None,
        read_back=read_back,
    )
    count_routing("failed", cause)
    log.error("routing failed: %s", reason, extra=fields)
    return Failed(shown or reason)


def _dead_letter_if_poison(job: RoutingJob, ctx: WorkerContext, attempt: int, fields: dict) -> Failed | None:
    """Count redeliveries of this attempt; past the limit, dead-letter the routing (:class:`Failed`).
    None when this copy may run (a routing that finished after all is then left alone by the state
    check)."""
    key = redis_keys.routing_deliveries(job.routing_id, attempt)
    deliveries = ctx.redis.incr(key)
    ctx.redis.expire(key, ctx.settings.routing_status_ttl_seconds)
    if deliveries <= MAX_REDELIVERIES:
        return None
    record = ctx.store.get(job.routing_id)
    if record is not None and record.state in TERMINAL:
        return None  # finished after all: the state check ends this copy
    reason = f"poison message: delivered {deliveries} times without finishing (its worker died each time)"
    return _fail(job, ctx, reason, "poison", fields)


def carry_out(job: RoutingJob, ctx: WorkerContext) -> int:
    """Resolve the queue and move the contact; return the skill id. Raises CXone errors."""
    return _carry_out(job, ctx)[0]


def _carry_out(job: RoutingJob, ctx: WorkerContext) -> tuple[int, ReadBack | None]:
    """The skill id, and the contact read back when that settled the routing without a call."""
    require_contact_id(job, ctx.settings.contact_id_pattern)
    if job.skill_id is not None:
        skill_id = job.skill_id
    else:
        skill_id = ctx.directory.skill_id(job.queue_name or "")
    # Overflow rules are checked here, just before the call: the queues' state changes while
    # routings wait. The job that goes on names the queue used (a voice signal carries it).
    job, skill_id = choose_queue(job, skill_id, ctx)
    if job.mode == "voice":
        _signal_once(job, skill_id, ctx)
        return skill_id, None
    return skill_id, _route_digital_once(job, skill_id, ctx)


def require_contact_id(job: RoutingJob, pattern: str) -> None:
    """Raise :class:`Permanent` unless the job's contact id is a CXone contact id.

    The ingress refuses such ids, but a message can be older than that check (a dead letter
    replayed, a queue drained after an upgrade): its id must still never reach a CXone URL.
    """
    if not is_contact_id(job.contact_id, pattern):
        raise Permanent(
            f"contact id {shown(job.contact_id)} is not a CXone contact id (CONTACT_ID_PATTERN "
            f"{pattern}); nothing was sent to CXone"
        )


def signal_params(job: RoutingJob, skill_id: int) -> list[str]:
    """What the Studio script receives in its OnSignal event (SP1 … SP9): the route's template from
    the task message (the default one for a message without it) with this routing's ids and names."""
    template = job.signal_params if job.signal_params is not None else DEFAULT_SIGNAL_PARAMS
    values = signal_values(
        skill_id=skill_id,
        queue=job.queue_label,
        intent=job.intent,
        routing_id=job.routing_id,
        contact_id=job.contact_id,
    )
    return render(template, values)


def _signal_once(job: RoutingJob, skill_id: int, ctx: WorkerContext) -> None:
    marker = redis_keys.routing_signal_sent(job.routing_id)
    if not ctx.redis.set(marker, str(time.time()), nx=True, ex=ctx.settings.routing_status_ttl_seconds):
        raise OutcomeUnknown(
            "a signal for this routing was already started and its outcome is unknown; "
            "not sending it twice (check the contact in CXone before replaying)",
            endpoint="signal",
        )
    _marker_kept(marker, ctx)
    try:
        ctx.client.signal(job.contact_id, signal_params(job, skill_id))
    except Transient as exc:
        if exc.not_delivered or exc.endpoint != "signal":
            ctx.redis.delete(marker)  # CXone certainly did not get it: safe to send later
            raise
        raise OutcomeUnknown(
            f"{exc.reason}; the signal may have reached CXone, so it is not re-sent "
            "(check the contact before replaying)",
            endpoint="signal",
            status=exc.status,
        ) from exc
    except Permanent:
        ctx.redis.delete(marker)  # refused (4xx): nothing was signalled
        raise


def _route_digital_once(job: RoutingJob, skill_id: int, ctx: WorkerContext) -> ReadBack | None:
    """Move a digital contact, at most once per routing; the read-back that settles it instead.

    The marker is read and set in one round trip before the PUT (a pipeline, not ``SET … GET``,
    which needs Redis 6.2; the contact's lease keeps other writers away): found already there, an
    earlier attempt may have moved the contact (its worker died, or its answer was lost), so the
    contact is read back first (:func:`_read_back`). A PUT that CXone certainly did not act
    on (refused connection, 429, 503, 401, our own limiter, no token) clears the marker; one whose
    outcome is unknown (a timeout, 500/502/504, a worker killed in the call) keeps it.
    """
    marker = redis_keys.routing_put_started(job.routing_id)
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.get(marker)
    pipe.set(marker, str(time.time()), ex=ctx.settings.routing_status_ttl_seconds)
    earlier = pipe.execute()[0]
    if earlier is None:
        _marker_kept(marker, ctx)
    if earlier is not None:
        read_back = _read_back(job, skill_id, ctx)
        if read_back.settles:
            return read_back
        log.info(
            "contact read back after an attempt whose outcome is unknown: %s; moving it",
            read_back.why,
            extra={"routing_id": job.routing_id, "contact_id": job.contact_id, "read_back": read_back.seen()},
        )
    try:
        ctx.client.route_digital(job.contact_id, skill_id)
    except Transient as exc:
        if exc.not_delivered or exc.endpoint != "routing_queue":
            ctx.redis.delete(marker)  # CXone certainly did not act on it: no read-back needed
        raise
    except Permanent:
        ctx.redis.delete(marker)  # refused (4xx): the contact was not moved
        raise
    return None


def _marker_kept(marker: str, ctx: WorkerContext) -> None:
    """With REDIS_MIN_REPLICAS_ACK, the call's marker must be on the replicas before the call:
    after a failover the routing's message comes back (its ack or its settle may be lost), and
    only the marker tells that attempt to read the contact back instead of calling again. Not
    confirmed: nothing was sent, the marker is dropped and the Redis error retries the routing.

    The settle after the call needs no such wait: lost, the marker still sends the next
    delivery to the read-back, which settles the routing without a second call."""
    try:
        ctx.replica_ack.confirm()
    except redis.RedisError:
        with contextlib.suppress(redis.RedisError):
            ctx.redis.delete(marker)  # nothing was sent: the next attempt may send
        raise


def _read_back(job: RoutingJob, skill_id: int, ctx: WorkerContext) -> ReadBack:
    """Read the contact back and judge it (:func:`shared.routing.read_back.judge`).

    Any failure to read (the contact, or the routing queue list it is compared with) is retried
    like a transient error, a refusal (403) too: the routing must not guess, and an operator's fix
    (the API user's role) lets it complete within the window.
    """
    try:
        contact = ctx.client.get_contact(job.contact_id)
        return judge(contact, skill_id, lambda: ctx.directory.routing_queue_id(skill_id))
    except Permanent as exc:
        raise Transient(
            f"could not read the contact back after an attempt whose outcome is unknown: {exc.reason}",
            status=exc.status,
            endpoint=exc.endpoint or "contact",
        ) from exc


def countdown_for(error: Transient, failures: int, ctx: WorkerContext) -> float:
    """Seconds until the next attempt: limiter wait (CXone's pause included), Retry-After, the
    end of the credentials pause, or exponential backoff.

    (A routing refused a call slot is parked in the backlog rather than retried, see
    :func:`parks`; the limiter's wait is still honoured here for any other caller.)

    Jitter is always positive on top of a known wait (never earlier than CXone asked), and
    "equal jitter" (half fixed, half random) for backoff, so retries spread without ever
    collapsing to zero. Capped below the broker's visibility timeout.
    """
    cap = ctx.settings.routing_max_countdown_seconds
    if isinstance(error, RateLimited):
        delay = error.wait + ctx.rng.uniform(0.01, 0.5)
    elif isinstance(error, Throttled | CredentialsRejected) and error.retry_after is not None:
        # Never before CXone's Retry-After, nor before the shared credentials pause ends (then
        # the first routing back makes the one token request; the others wait on its lock).
        delay = error.retry_after + ctx.rng.uniform(0.1, 1.0)
    else:
        # Clamp the exponent: 2.0 ** 1024 overflows, and any cap is reached long before 2 ** 32.
        backoff = min(cap, 2.0 ** min(max(0, failures - 1), 32))
        delay = backoff / 2 + ctx.rng.uniform(0, backoff / 2)
    return min(cap, delay)


def parks(error: Transient) -> bool:
    """Whether ``error`` means "wait for a call slot" (our limiter, CXone's pause after a 429 with
    Retry-After): such a routing waits in the backlog, not in a Celery countdown."""
    if isinstance(error, RateLimited):
        return True
    # A Retry-After of 0 sets no pause (see CXoneClient): that 429 backs off like one without.
    return isinstance(error, Throttled) and bool(error.retry_after)


def _park(
    job: RoutingJob, ctx: WorkerContext, error: Transient, fields: dict, task_id: str | None
) -> Parked | None:
    """Put the routing in the backlog (see :mod:`shared.routing.backlog`); its task then ends."""
    parked = ctx.backlog.park(job, error.summary, task_id)
    count_routing("parked", retry_cause(error))
    if parked is not None:
        log.debug("waiting in the backlog at position %d: %s", parked.position, error.reason, extra=fields)
    return parked


def _plan_retry(
    job: RoutingJob, ctx: WorkerContext, error: Transient, record: RoutingRecord | None, fields: dict
) -> RetryLater | Failed:
    is_failure = not isinstance(error, RateLimited)  # waiting for our own budget is no failure
    past_failures = record.attempts if record else 0
    failures = past_failures + (1 if is_failure else 0)
    countdown = countdown_for(error, failures, ctx)
    # Time spent waiting in the backlog for a slot is not spent failing: the window counts from
    # when the routing last left it.
    window_from = max(job.received_at or time.time(), (record.left_backlog_at or 0) if record else 0)
    deadline = window_from + ctx.settings.routing_retry_window_seconds
    if time.time() + countdown > deadline:
        gave_up = (
            f"gave up after the {ctx.settings.routing_retry_window_seconds}s retry "
            f"window ({failures} failed attempts); last error: "
        )
        return _fail(job, ctx, gave_up + error.reason, "retry_window", fields, shown=gave_up + error.summary)
    ctx.store.mark_retrying(
        job.routing_id, error.reason, time.time() + countdown, counts_as_attempt=is_failure
    )
    count_routing("retried", retry_cause(error))
    level = logging.DEBUG if isinstance(error, RateLimited) else logging.WARNING
    log.log(level, "retrying in %.1fs: %s", countdown, error.reason, extra=fields)
    return RetryLater(countdown, error.summary)


def retry_cause(error: Transient) -> str:
    """The ``reason`` label of a retry: CXone's shared pause, our own limiter, a CXone 429, rejected
    credentials, or any other transient error."""
    if isinstance(error, PausedByCXone):
        return "cxone_pause"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, Throttled):
        return "throttled"
    if isinstance(error, CredentialsRejected):
        return "credentials_rejected"
    return "transient"
