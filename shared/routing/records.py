"""The routing record: what happened to one routing, kept in Redis for operators and the sender.

States: ``queued`` (accepted, waiting for a worker) → ``waiting`` (in the backlog for a CXone call
slot, ``waitingSince``; see :mod:`shared.routing.backlog`) → ``retrying`` (a transient failure; attempt
count, last error and next attempt time kept) → ``routed`` (skill id and time) or ``failed``
(reason; also written to the dead-letter hash with the task message, so it can be replayed) or
``superseded`` (a newer routing for the same contact exists, ``supersededBy``; no call was made,
nothing to replay: the newer routing is the one the customer wants).

Every transition to a terminal state announces the outcome in the same transaction
(:func:`~shared.routing.announcements.announce_outcome`), so webhooks waiting for it are woken
exactly once; a new terminal transition must do the same.

The ingress writes the record in the same script that queues the task; the operator CLI's replay
writes it right *after* publishing (see ``shared/routing/publisher.py``). It never overwrites an
existing one, because a fast worker may already have created and settled it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis

from shared import redis_keys
from shared.routing.announcements import announce_outcome
from shared.routing.job import RoutingJob
from shared.routing.latest import ADVANCE_LUA

if TYPE_CHECKING:  # only the type: records need no Celery
    from shared.task_envelope import TaskEnvelope

QUEUED, RETRYING, ROUTED, FAILED = "queued", "retrying", "routed", "failed"
#: In the backlog, waiting for a CXone call slot (``waitingSince``): open, not stuck.
WAITING = "waiting"
#: A newer routing for the same contact replaced this one before it ran (``supersededBy``).
SUPERSEDED = "superseded"
#: States that end a routing: the worker never carries it out again, operators never see it stuck.
TERMINAL = (ROUTED, FAILED, SUPERSEDED)


@dataclass
class RoutingRecord:
    """One routing's state as stored in Redis."""

    routing_id: str
    state: str
    job: dict
    received_at: float
    updated_at: float
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: float | None = None
    skill_id: int | None = None
    routed_at: float | None = None
    failed_reason: str | None = None
    superseded_by: str | None = None
    #: Where an overflow rule sent the routing instead of the queue asked for (see
    #: :meth:`RoutingStatusStore.note_overflow`); None: the queue asked for.
    overflow: dict | None = None
    #: How the outcome was learned when no CXone call gave it: ``"contact read-back"``, with what
    #: was read (``read_back``: status, routing queue, assignee, conclusion).
    confirmed_by: str | None = None
    read_back: dict | None = None
    #: In the backlog: since when, and for what (our words: the limiter, or CXone's pause).
    waiting_since: float | None = None
    waiting_for: str | None = None
    #: The Celery task id of the routing's message (kept while it waits, so the message its
    #: dispatcher publishes has the same id: Flower shows one task, a revoke still applies).
    task_id: str | None = None
    #: When a dispatcher last took it out of the backlog (its retry window counts from there).
    left_backlog_at: float | None = None
    extra: dict = field(default_factory=dict)

    def to_public(self) -> dict:
        """The JSON shown by ``GET /routings/<id>`` (ids and names only, no customer text)."""
        body: dict = {
            "routingId": self.routing_id,
            "state": self.state,
            "intent": self.job.get("intent"),
            "queue": self.job.get("queue_name") or f"skill {self.job.get('skill_id')}",
            "contactId": self.job.get("contact_id"),
            "mode": self.job.get("mode"),
            "receivedAt": _iso(self.received_at),
            "updatedAt": _iso(self.updated_at),
            "attempts": self.attempts,
        }
        if self.job.get("contact_source"):
            body["contactSource"] = self.job["contact_source"]
        if self.overflow:
            # ``queue`` is where the contact goes; ``queueAsked`` the route's own queue.
            body["queueAsked"] = body["queue"]
            body["queue"] = self.overflow.get("to") or body["queue"]
            body["overflow"] = self.overflow
        if self.state == RETRYING:
            body["lastError"] = self.last_error
            body["nextAttemptAt"] = _iso(self.next_attempt_at)
        if self.state == WAITING:
            body["waitingFor"] = self.waiting_for
            body["waitingSince"] = _iso(self.waiting_since)
        if self.state == ROUTED:
            body["skillId"] = self.skill_id
            body["routedAt"] = _iso(self.routed_at)
        if self.state == FAILED:
            body["reason"] = self.failed_reason
            body["lastError"] = self.last_error
        if self.state == SUPERSEDED:
            body["supersededBy"] = self.superseded_by
        if self.confirmed_by:
            body["confirmedBy"] = self.confirmed_by
            body["contactReadBack"] = self.read_back
        return body


class RoutingStatusStore:
    """Reads and writes routing records and the dead-letter hash."""

    def __init__(self, client: redis.Redis, ttl_seconds: int):
        self.redis = client
        self.ttl_seconds = ttl_seconds
        self._create_if_absent = client.register_script(_CREATE_IF_ABSENT)
        self._queue_and_create = client.register_script(_QUEUE_AND_CREATE)
        self._claim_replay = client.register_script(_CLAIM_REPLAY)
        self._create_waiting = client.register_script(_CREATE_WAITING_IF_BACKLOG)

    def create(
        self,
        job: RoutingJob,
        settle_keys: Sequence[str] = (),
        settle_ttl: int = 0,
        *,
        task: TaskEnvelope | None = None,
        waiting_for: str = "",
    ) -> bool:
        """Write the ``queued`` record and index it as open, unless a record already exists.

        Never overwrites: the worker may have taken the task (and even routed it) before the
        ingress gets here. In the same round trip, ``settle_keys`` (the duplicate keys) are set to
        the routing id for ``settle_ttl`` seconds, and a numbered routing (``contact_seq``) becomes
        its contact's latest if it is the newest (:mod:`shared.routing.latest`), which also settles
        a pending claim on the contact. With ``task``, the task message is queued (and its
        ``task-sent`` event published) in the same script, so the routing's task, record and
        duplicate keys are written together or not at all; or, while routings wait in the backlog,
        the routing joins them (record ``waiting``, ``waiting_for`` saying why) and its task is
        published when its turn comes. Returns True if this call created the record.
        """
        keys = create_keys(job)
        args = create_args(job, self.ttl_seconds, settle_ttl)
        if task is None:
            return bool(self._create_if_absent(keys=[*keys, *settle_keys], args=args))
        return bool(
            self._queue_and_create(
                keys=[*keys, task.queue, redis_keys.BACKLOG, *settle_keys],
                args=[*args, task.payload, task.event_channel, task.event, task.task_id, waiting_for[:500]],
            )
        )

    def create_waiting_if_backlog(
        self,
        job: RoutingJob,
        task_id: str,
        reason: str,
        settle_keys: Sequence[str] = (),
        settle_ttl: int = 0,
    ) -> bool:
        """If routings wait in the backlog, put ``job`` behind them (record ``waiting``, in the
        backlog by its accepted time, settled like :meth:`create`) in one step and return True:
        no task message is needed until a dispatcher hands it to a worker. False (nothing written)
        when the backlog is empty: the caller publishes the task as usual."""
        return bool(
            self._create_waiting(
                keys=[*create_keys(job), redis_keys.BACKLOG, *settle_keys],
                args=[*create_args(job, self.ttl_seconds, settle_ttl), task_id, reason[:500]],
            )
        )

    def get(self, routing_id: str) -> RoutingRecord | None:
        """The record, or None when unknown or expired."""
        return record_from_hash(routing_id, self.redis.hgetall(redis_keys.routing(routing_id)))

    def mark_routed(
        self,
        routing_id: str,
        skill_id: int,
        *,
        confirmed_by: str | None = None,
        read_back: dict | None = None,
        release: tuple[str, str] | None = None,
    ) -> None:
        """Record success and close the routing. ``confirmed_by``/``read_back``: the contact was
        read back instead of moved again (see :mod:`shared.routing.read_back`).

        The routing's PUT marker goes in the same transaction: once routed it has no use left.
        ``release`` (key, value): a lease deleted in the same transaction if it still holds the
        value (the worker's contact lease: one round trip less per routing).
        """
        now = time.time()
        fields = {"skill_id": skill_id, "routed_at": now, "updated_at": now}

        def also(pipe: redis.client.Pipeline) -> None:
            pipe.delete(redis_keys.routing_put_started(routing_id))
            if release is not None:
                pipe.eval(_DELETE_IF_EQUAL, 1, release[0], release[1])

        self._settle(routing_id, ROUTED, {**fields, **_confirmation(confirmed_by, read_back)}, also=also)

    def mark_retrying(
        self, routing_id: str, error: str, next_attempt_at: float, counts_as_attempt: bool = True
    ) -> int:
        """Record a transient failure; return the number of failed attempts so far."""
        key = redis_keys.routing(routing_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(key, "attempts", 1 if counts_as_attempt else 0)
        pipe.hset(
            key,
            mapping={
                "state": RETRYING,
                "last_error": error[:500],
                "next_attempt_at": next_attempt_at,
                "updated_at": time.time(),
            },
        )
        pipe.expire(key, self.ttl_seconds)
        attempts, *_ = pipe.execute()
        return int(attempts)

    def note_overflow(self, routing_id: str, overflow: dict | None) -> bool:
        """Record where the worker's overflow decision sends the routing (``overflow``: the public
        view of :class:`~shared.routing.overflow.OverflowDecision`; None: the queue asked for).

        Decided again on every attempt (the queues' state changes), so a later attempt may replace
        or clear it. Returns True when this changes what the record said.
        """
        key = redis_keys.routing(routing_id)
        text = json.dumps(overflow) if overflow else None
        previous = self.redis.hget(key, "overflow")
        if (_text(previous) if previous else None) == text:
            return False
        if text is None:
            self.redis.hdel(key, "overflow")
        else:
            self.redis.hset(key, "overflow", text)
        return True

    def touch(self, routing_id: str) -> None:
        """Note activity on an open routing (its lost task message was just re-published)."""
        self.redis.hset(redis_keys.routing(routing_id), mapping={"updated_at": time.time()})

    def mark_failed(
        self,
        routing_id: str,
        reason: str,
        job: dict,
        *,
        confirmed_by: str | None = None,
        read_back: dict | None = None,
    ) -> None:
        """Record a final failure and put the task message in the dead-letter hash for replay.
        ``confirmed_by``/``read_back`` as for :meth:`mark_routed`; a failed routing keeps its PUT
        marker, so a replay reads the contact back before moving it."""
        now = time.time()
        letter = json.dumps({"job": job, "reason": reason[:500], "failed_at": now})
        self._settle(
            routing_id,
            FAILED,
            {"failed_reason": reason[:500], "updated_at": now, **_confirmation(confirmed_by, read_back)},
            also=lambda pipe: pipe.hset(redis_keys.DEAD_LETTERS, routing_id, letter),
        )

    def mark_superseded(self, routing_id: str, newer_routing_id: str) -> None:
        """Close the routing because ``newer_routing_id`` (same contact) replaces it. Not a failure:
        nothing is dead-lettered, since carrying it out would undo what the customer asked last."""
        self._settle(routing_id, SUPERSEDED, {"superseded_by": newer_routing_id, "updated_at": time.time()})

    def _settle(
        self,
        routing_id: str,
        state: str,
        fields: dict,
        also: Callable[[redis.client.Pipeline], object] | None = None,
    ) -> None:
        """Write a terminal ``state`` with ``fields``, take the routing out of the open and waiting
        indexes, and announce the outcome, all in one transaction (``also`` adds to it)."""
        key = redis_keys.routing(routing_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"state": state, **fields})
        pipe.expire(key, self.ttl_seconds)
        pipe.zrem(redis_keys.OPEN_ROUTINGS, routing_id)
        pipe.zrem(redis_keys.BACKLOG, routing_id)
        pipe.hdel(redis_keys.BACKLOG_DISPATCHING, routing_id)
        if also is not None:
            also(pipe)
        announce_outcome(pipe, routing_id, state)
        pipe.execute()

    def open_older_than(self, seconds: float, limit: int = 1000) -> list[RoutingRecord]:
        """Routings received more than ``seconds`` ago that have not ended (see :data:`TERMINAL`)."""
        ids = self.redis.zrangebyscore(
            redis_keys.OPEN_ROUTINGS, "-inf", time.time() - seconds, start=0, num=limit
        )
        records = []
        for routing_id in ids:
            record = self.get(_text(routing_id))
            if record is None:  # expired: drop it from the index too
                self.redis.zrem(redis_keys.OPEN_ROUTINGS, routing_id)
            elif record.state not in TERMINAL:
                records.append(record)
        return records

    # ---------------------------------------------------------------- dead letters

    def dead_letter(self, routing_id: str) -> dict | None:
        """The dead-letter entry ``{job, reason, failed_at}`` of one routing, or None."""
        raw = self.redis.hget(redis_keys.DEAD_LETTERS, routing_id)
        return json.loads(raw) if raw else None

    def dead_letters(self) -> dict[str, dict]:
        """Every dead-letter entry by routing id (oldest first)."""
        entries = {_text(k): json.loads(v) for k, v in self.redis.hgetall(redis_keys.DEAD_LETTERS).items()}
        return dict(sorted(entries.items(), key=lambda item: item[1].get("failed_at", 0)))

    def remove_dead_letter(self, routing_id: str) -> bool:
        """Drop one entry (after a successful replay, or a purge); True if it was there."""
        return bool(self.redis.hdel(redis_keys.DEAD_LETTERS, routing_id))

    def purge_dead_letters(self) -> int:
        """Drop every entry; return how many there were."""
        count = self.redis.hlen(redis_keys.DEAD_LETTERS)
        self.redis.delete(redis_keys.DEAD_LETTERS)
        return int(count)

    def claim_replay(self, job: RoutingJob) -> bool:
        """Atomically turn a ``failed`` (or expired) record into a fresh ``queued`` one for ``job``.

        False if the routing is in any other state (already replayed, or routed since).
        """
        return bool(
            self._claim_replay(
                keys=[redis_keys.routing(job.routing_id), redis_keys.OPEN_ROUTINGS],
                args=[
                    json.dumps(job.to_message()),
                    job.received_at,
                    time.time(),
                    self.ttl_seconds,
                    job.routing_id,
                ],
            )
        )


#: Lua: ``create_if_absent(first)`` (with :data:`ADVANCE_LUA`'s ``advance``), shared with the
#: worker's start of a routing (``worker/routing.py``).
def create_keys(job: RoutingJob) -> list[str]:
    """The first KEYS of every script built on :data:`CREATE_FUNCTION_LUA`."""
    return [
        redis_keys.routing(job.routing_id),
        redis_keys.OPEN_ROUTINGS,
        redis_keys.contact_latest(job.contact_id),
    ]


def create_args(job: RoutingJob, ttl_seconds: int, settle_ttl: int = 0) -> list:
    """The first ARGV of every script built on :data:`CREATE_FUNCTION_LUA` (its comment)."""
    now = time.time()
    return [
        json.dumps(job.to_message()),
        job.received_at or now,
        now,
        ttl_seconds,
        job.routing_id,
        settle_ttl,
        "" if job.contact_seq is None else job.contact_seq,
        job.intent,
    ]


# create_if_absent(first): KEYS = record, open index, contact latest; ARGV = job json,
# received_at, now, ttl, routing id, settle ttl, contact seq ('' when none), intent. settle(first):
# KEYS[first..] = duplicate keys set to the routing id for ARGV[6] seconds, and the contact's latest
# advanced to this routing if it is the newest.
CREATE_FUNCTION_LUA = (
    ADVANCE_LUA
    + """
local function settle(first)
    for i = first, #KEYS do
        redis.call('SET', KEYS[i], ARGV[5], 'EX', tonumber(ARGV[6]))
    end
    if ARGV[7] ~= '' then
        advance(KEYS[3], ARGV[5], tonumber(ARGV[7]), ARGV[8], ARGV[2], tonumber(ARGV[4]))
    end
end
local function create_if_absent(first)
    settle(first)
    if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
    redis.call('HSET', KEYS[1], 'state', 'queued', 'job', ARGV[1], 'received_at', ARGV[2],
               'updated_at', ARGV[3], 'attempts', 0)
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
    redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
    return 1
end
"""
)
_CREATE_IF_ABSENT = CREATE_FUNCTION_LUA + "return create_if_absent(4)\n"

#: Lua: ``join_backlog(backlog, first, task_id, reason)`` puts the routing behind the routings that
#: wait in the backlog for a CXone call slot (shared/routing/backlog.py). It comes after
#: CREATE_FUNCTION_LUA and takes the same ARGV: ``settle(first)``, then the record written
#: ``waiting`` unless one exists (returns 1 if written), and the routing in the open index and the
#: backlog by its accepted time. No task message: a dispatcher publishes it in turn.
JOIN_BACKLOG_FUNCTION_LUA = """
local function join_backlog(backlog, first, task_id, reason)
    settle(first)
    if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
    redis.call('HSET', KEYS[1], 'state', 'waiting', 'job', ARGV[1], 'received_at', ARGV[2],
               'updated_at', ARGV[3], 'attempts', 0, 'waiting_since', ARGV[3], 'task_id', task_id,
               'waiting_for', reason)
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
    redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
    redis.call('ZADD', backlog, 'NX', ARGV[2], ARGV[5])
    return 1
end
"""

# After queueing the task: KEYS[4] = the task queue (LPUSH ARGV[9]), KEYS[5] = the backlog;
# ARGV[10] = the channel of its task-sent event ARGV[11] ('' when events are off), ARGV[12] = the
# task id, ARGV[13] = why it would wait; duplicate keys from KEYS[6]. While routings wait in the
# backlog, the routing joins them instead of queueing its task (the task would only be refused a
# slot and park there), so the ingress still makes one round trip either way.
_QUEUE_AND_CREATE = (
    CREATE_FUNCTION_LUA
    + JOIN_BACKLOG_FUNCTION_LUA
    + """
if redis.call('ZCARD', KEYS[5]) > 0 then
    return join_backlog(KEYS[5], 6, ARGV[12], ARGV[13])
end
redis.call('LPUSH', KEYS[4], ARGV[9])
if ARGV[10] ~= '' then
    redis.call('PUBLISH', ARGV[10], ARGV[11])
end
return create_if_absent(6)
"""
)

# KEYS = record, open index, contact latest, backlog; ARGV as _CREATE_IF_ABSENT, then task id and
# reason. KEYS[5..] = duplicate keys to settle. Does nothing (0) while the backlog is empty.
_CREATE_WAITING_IF_BACKLOG = (
    CREATE_FUNCTION_LUA
    + JOIN_BACKLOG_FUNCTION_LUA
    + """
if redis.call('ZCARD', KEYS[4]) == 0 then return 0 end
return join_backlog(KEYS[4], 5, ARGV[9], ARGV[10])
"""
)

# KEYS = the lease; ARGV = the value it must still hold to be deleted.
_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS = record, open index; ARGV = job json, received_at, now, ttl, routing id. Only a failed or
# missing record may be replaced (superseded and routed ones are final).
_CLAIM_REPLAY = """
local state = redis.call('HGET', KEYS[1], 'state')
if state and state ~= 'failed' then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'queued', 'job', ARGV[1], 'received_at', ARGV[2],
           'updated_at', ARGV[3], 'attempts', 0)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
return 1
"""


def record_from_hash(routing_id: str, raw: dict | list) -> RoutingRecord | None:
    """The record stored as ``raw`` (HGETALL's answer: a dict, or a flat list of names and values
    as a Lua script returns it), or None when empty."""
    if isinstance(raw, list):
        raw = dict(zip(raw[::2], raw[1::2], strict=True))
    if not raw:
        return None
    data = {_text(k): _text(v) for k, v in raw.items()}
    return RoutingRecord(
        routing_id=routing_id,
        state=data.get("state", QUEUED),
        job=json.loads(data.get("job") or "{}"),
        received_at=float(data.get("received_at") or 0),
        updated_at=float(data.get("updated_at") or 0),
        attempts=int(data.get("attempts") or 0),
        last_error=data.get("last_error") or None,
        next_attempt_at=_float(data.get("next_attempt_at")),
        skill_id=int(data["skill_id"]) if data.get("skill_id") else None,
        routed_at=_float(data.get("routed_at")),
        failed_reason=data.get("failed_reason") or None,
        superseded_by=data.get("superseded_by") or None,
        overflow=json.loads(data["overflow"]) if data.get("overflow") else None,
        confirmed_by=data.get("confirmed_by") or None,
        read_back=json.loads(data["read_back"]) if data.get("read_back") else None,
        waiting_since=_float(data.get("waiting_since")),
        waiting_for=data.get("waiting_for") or None,
        task_id=data.get("task_id") or None,
        left_backlog_at=_float(data.get("left_backlog_at")),
    )


def _confirmation(confirmed_by: str | None, read_back: dict | None) -> dict:
    """The record fields saying how an outcome was confirmed (none when a CXone call gave it)."""
    if not confirmed_by:
        return {}
    return {"confirmed_by": confirmed_by, "read_back": json.dumps(read_back or {})}


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _iso(timestamp: float | None) -> str | None:
    if not timestamp:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + (
        f".{int((timestamp % 1) * 1000):03d}Z"
    )
